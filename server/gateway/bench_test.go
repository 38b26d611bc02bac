package gateway_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	pb "github.com/canopy-authz/canopy/proto/canopy/v1"
)

// BenchmarkCheck compares one caller's Check over gRPC on loopback with
// the same Check as HTTP/JSON through the gateway, against the ATLAS
// example (go test ./server/gateway -run '^$' -bench Check).
func BenchmarkCheck(b *testing.B) {
	s, url := start(b)
	b.Run("grpc", func(b *testing.B) {
		conn, err := grpc.NewClient(s.Addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			b.Fatal(err)
		}
		defer conn.Close()
		c := pb.NewAccessServiceClient(conn)
		req := &pb.CheckRequest{User: "tom", Right: "edit", Resource: &pb.ObjectRef{Kind: pb.ObjectKind_OBJECT_KIND_USER, Id: "carl"}}
		for b.Loop() {
			if _, err := c.Check(context.Background(), req); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("http", func(b *testing.B) {
		body := `{"user":"tom","right":"edit","resource":{"kind":"OBJECT_KIND_USER","id":"carl"}}`
		for b.Loop() {
			resp, err := http.Post(url+"/v1/check", "application/json", strings.NewReader(body))
			if err != nil {
				b.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				b.Fatal(resp.Status)
			}
		}
	})
}
