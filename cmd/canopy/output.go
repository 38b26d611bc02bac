package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
	"sigs.k8s.io/yaml"

	pb "github.com/canopy-authz/canopy/proto/canopy/v1"
)

// emit prints v as the output flag asks: as JSON or YAML in the API's
// own field names (v is a proto message, or a value whose JSON tags use
// them), or, for a table, by calling text.
func (a *app) emit(v any, text func(w io.Writer) error) error {
	switch a.output {
	case "json", "yaml":
		raw, err := encode(v, a.output)
		if err != nil {
			return err
		}
		_, err = a.out.Write(raw)
		return err
	}
	return text(a.out)
}

// encode writes v as JSON (indented, stable) or YAML, ending in a newline.
func encode(v any, format string) ([]byte, error) {
	var raw []byte
	var err error
	if msg, ok := v.(proto.Message); ok {
		raw, err = protojson.MarshalOptions{UseProtoNames: true, EmitDefaultValues: true}.Marshal(msg)
	} else {
		raw, err = json.Marshal(v)
	}
	if err != nil {
		return nil, fmt.Errorf("encode: %w", err)
	}
	// protojson varies its spacing on purpose; re-indent for stable output.
	var buf bytes.Buffer
	if err := json.Indent(&buf, raw, "", "  "); err != nil {
		return nil, fmt.Errorf("encode: %w", err)
	}
	if format == "yaml" {
		return yaml.JSONToYAML(buf.Bytes())
	}
	buf.WriteByte('\n')
	return buf.Bytes(), nil
}

// encodeLine writes msg as one line of compact JSON, for streams.
func encodeLine(msg proto.Message) ([]byte, error) {
	raw, err := protojson.MarshalOptions{UseProtoNames: true, EmitDefaultValues: true}.Marshal(msg)
	if err != nil {
		return nil, fmt.Errorf("encode: %w", err)
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, raw); err != nil {
		return nil, fmt.Errorf("encode: %w", err)
	}
	buf.WriteByte('\n')
	return buf.Bytes(), nil
}

// table writes rows under a header, in aligned columns.
func table(w io.Writer, header string, rows [][]string) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, header)
	for _, r := range rows {
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	return tw.Flush()
}

// refString writes a reference as people type it: folder/ID, user/ID, or
// "-" for none.
func refString(r *pb.ObjectRef) string {
	switch r.GetKind() {
	case pb.ObjectKind_OBJECT_KIND_FOLDER:
		return "folder/" + r.GetId()
	case pb.ObjectKind_OBJECT_KIND_USER:
		return "user/" + r.GetId()
	}
	return "-"
}

// parseRef reads folder/ID or user/ID (folder:ID and user:ID too); "" and
// "-" are no reference.
func parseRef(s string) (*pb.ObjectRef, error) {
	if s == "" || s == "-" {
		return nil, nil
	}
	kind, id, ok := strings.Cut(s, "/")
	if !ok {
		kind, id, ok = strings.Cut(s, ":")
	}
	if ok && id != "" {
		switch kind {
		case "folder":
			return &pb.ObjectRef{Kind: pb.ObjectKind_OBJECT_KIND_FOLDER, Id: id}, nil
		case "user":
			return &pb.ObjectRef{Kind: pb.ObjectKind_OBJECT_KIND_USER, Id: id}, nil
		}
	}
	return nil, fmt.Errorf("reference %q: want folder/ID or user/ID", s)
}

// reasonWords writes a decision's reason as words: REASON_NO_GRANT is
// "no grant".
func reasonWords(r pb.Reason) string {
	return strings.ReplaceAll(strings.ToLower(strings.TrimPrefix(r.String(), "REASON_")), "_", " ")
}

// stateWord writes a user state as its word: USER_STATE_ACTIVE is "active".
func stateWord(s pb.UserState) string {
	return strings.ToLower(strings.TrimPrefix(s.String(), "USER_STATE_"))
}

// timeText writes a time as people read it in tables and lines: RFC 3339
// in UTC, to the second.
func timeText(ts *timestamppb.Timestamp) string {
	return ts.AsTime().UTC().Format(time.RFC3339)
}

// orDash writes "-" for an empty string.
func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// labels writes labels as k=v pairs, sorted.
func labels(m map[string]string) string {
	var out []string
	for k, v := range m {
		out = append(out, k+"="+v)
	}
	slices.Sort(out)
	return orDash(strings.Join(out, ","))
}
