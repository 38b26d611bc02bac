package server

import (
	"context"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	pb "github.com/canopy-authz/canopy/proto/canopy/v1"
)

// TestRateLimitPerCaller: a caller over its burst gets ResourceExhausted
// naming it; another caller and health are not affected. The refill rate
// is so low that no token comes back during the test.
func TestRateLimitPerCaller(t *testing.T) {
	ts := startServerOpts(t, Options{Tokens: testTokens(t), RateLimit: RateLimit{PerSecond: 0.001, Burst: 3}})
	as := func(token string) context.Context {
		return metadata.AppendToOutgoingContext(ctxT(t), "authorization", "Bearer "+token)
	}
	check := func(token string) error {
		_, err := ts.acc.Check(as(token), &pb.CheckRequest{User: "nobody", Right: "read"})
		return err
	}
	for i := 0; i < 3; i++ {
		if err := check("check-token"); err != nil {
			t.Fatalf("call %d within the burst: %v", i, err)
		}
	}
	err := check("check-token")
	if st, _ := status.FromError(err); st.Code() != codes.ResourceExhausted || !strings.Contains(st.Message(), "check-caller") {
		t.Fatalf("over the burst: %v", err)
	}
	if err := check("admin-token"); err != nil {
		t.Fatalf("another caller: %v", err)
	}
	for i := 0; i < 5; i++ {
		if _, err := healthpb.NewHealthClient(ts.conn).Check(ctxT(t), &healthpb.HealthCheckRequest{}); err != nil {
			t.Fatalf("health is limited: %v", err)
		}
	}
}
