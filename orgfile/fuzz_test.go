package orgfile_test

import (
	"os"
	"testing"

	"github.com/canopy-authz/canopy/orgfile"
)

// FuzzParse: any input either parses, and then renders to a file that
// parses back to the same rendering, or is refused with problems; it
// never panics.
func FuzzParse(f *testing.F) {
	f.Add([]byte(sample))
	for _, p := range []string{"../examples/organisations/atlas.yaml", "../examples/organisations/aptem.yaml"} {
		raw, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(raw)
	}
	f.Add([]byte("organisations: [{id: a, folders: [{id: b, admits: x}]}]\nusers: [{id: u, class: c, home: b, extra_groups: a}]"))
	f.Add([]byte(`{"rights": ["read"], "locks": [{"id": "l", "target": "folder/x"}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		file, err := orgfile.Parse("fuzz.yaml", data)
		if err != nil {
			return
		}
		text := orgfile.Render(file)
		back, err := orgfile.Parse("rendered.yaml", text)
		if err != nil {
			t.Fatalf("a rendering does not parse: %v\n%s", err, text)
		}
		if again := orgfile.Render(back); string(again) != string(text) {
			t.Fatalf("render, parse, render differ:\n%s\n---\n%s", text, again)
		}
	})
}
