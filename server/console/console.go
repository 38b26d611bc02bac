// Package console is Canopy's web console: a page over the HTTP/JSON API
// (server/gateway) that shows an organisation's tree with its counts, a
// user's access drawn over it, a decision explained as a picture, the
// live change feed and the audit trail, and previews a grant before it is
// given. Its files are embedded in the binary; nothing is fetched from
// elsewhere. It decides nothing: every answer is the server's, behind the
// caller's token.
package console

import (
	"embed"
	"io/fs"
	"net/http"
	"strings"
)

//go:embed static
var static embed.FS

// Handler serves the console's files, and api (the gateway's handler) for
// the API's paths, so that the page calls the API on its own origin.
func Handler(api http.Handler) http.Handler {
	files, err := fs.Sub(static, "static")
	if err != nil {
		panic(err) // the embedded folder is there by construction
	}
	fileServer := http.FileServerFS(files)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/v1/") || r.URL.Path == "/openapi.json" {
			api.ServeHTTP(w, r)
			return
		}
		// Nothing of the page comes from elsewhere, nor may it be framed.
		w.Header().Set("Content-Security-Policy", "default-src 'self'; frame-ancestors 'none'")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		fileServer.ServeHTTP(w, r)
	})
}
