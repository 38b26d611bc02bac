package server

import (
	"context"
	"testing"

	"google.golang.org/grpc/metadata"

	pb "github.com/canopy-authz/canopy/proto/canopy/v1"
)

// BenchmarkCheckWithToken is one caller's Check over an in-memory
// connection to a server with a tokens file: the cost of a call, with
// every interceptor, around a decision that is cheap (an unknown user).
func BenchmarkCheckWithToken(b *testing.B) {
	ts := startServerOpts(b, Options{Tokens: testTokens(b)})
	ctx := metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer check-token")
	req := &pb.CheckRequest{User: "nobody", Right: "read"}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ts.acc.Check(ctx, req); err != nil {
			b.Fatal(err)
		}
	}
}
