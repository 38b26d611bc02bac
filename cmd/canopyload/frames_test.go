package main

import (
	"context"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	pb "github.com/canopy-authz/canopy/proto/canopy/v1"
)

// TestFrameStreamEndings opens calls the server refuses and checks that a
// frameConn reports the status the server's trailers carry, and that a
// call it cancels ends as cancelled.
func TestFrameStreamEndings(t *testing.T) {
	p, err := startInProcess(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer p.stop()
	fc, err := dialFrames(p.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer fc.close()

	type ending struct {
		err  error
		seen int
	}
	open := func(ctx context.Context, method string, req proto.Message) chan ending {
		ended := make(chan ending, 1)
		seen := 0
		err := fc.open(ctx, method, req,
			func(uint64, time.Time, time.Time) { seen++ },
			func(err error) { ended <- ending{err, seen} })
		if err != nil {
			t.Fatal(err)
		}
		return ended
	}
	wait := func(ended chan ending) ending {
		select {
		case e := <-ended:
			if e.seen != 0 && status.Code(e.err) != codes.Canceled {
				t.Errorf("a refused call delivered %d responses", e.seen)
			}
			return e
		case <-time.After(10 * time.Second):
			t.Fatal("the call did not end within 10s")
			return ending{}
		}
	}
	ctx := context.Background()
	if e := wait(open(ctx, pb.WatchService_WatchAccess_FullMethodName, &pb.WatchAccessRequest{User: "nobody"})); status.Code(e.err) != codes.NotFound {
		t.Errorf("WatchAccess of an unknown user ended with %v, want NotFound", e.err)
	}
	bad := &pb.WatchRequest{Filter: &pb.WatchFilter{Kinds: []pb.ChangeKind{99}}}
	if e := wait(open(ctx, pb.WatchService_Watch_FullMethodName, bad)); status.Code(e.err) != codes.InvalidArgument {
		t.Errorf("Watch with an unknown change kind ended with %v, want InvalidArgument", e.err)
	}
	cctx, cancel := context.WithCancel(ctx)
	ended := open(cctx, pb.WatchService_Watch_FullMethodName, &pb.WatchRequest{})
	cancel()
	if e := wait(ended); status.Code(e.err) != codes.Canceled {
		t.Errorf("a cancelled Watch ended with %v, want Canceled", e.err)
	}
	// The connection still serves calls after all that.
	if e := wait(open(ctx, pb.WatchService_WatchAccess_FullMethodName, &pb.WatchAccessRequest{User: "nobody"})); status.Code(e.err) != codes.NotFound {
		t.Errorf("WatchAccess after the others ended with %v, want NotFound", e.err)
	}
	fc.close()
	if err := fc.open(ctx, pb.WatchService_Watch_FullMethodName, &pb.WatchRequest{}, nil, nil); err == nil {
		t.Error("a call opened after close: want an error")
	}
}

// TestStamp checks stamp against the generated decoder on whole responses.
func TestStamp(t *testing.T) {
	commit := time.Date(2026, 11, 23, 9, 30, 0, 123456789, time.UTC)
	for _, m := range []proto.Message{
		&pb.WatchResponse{Revision: 42, CommitTime: timestamppb.New(commit), Actor: "ops", Mutations: []*pb.Mutation{{}}},
		&pb.WatchAccessResponse{Revision: 7, Actor: "system"},
		&pb.WatchResponse{Revision: 1, CommitTime: timestamppb.New(time.Unix(-5, -1))},
	} {
		b, err := proto.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		checkStamp(t, b)
	}
}

// FuzzStamp checks that whatever the generated decoder reads as a
// WatchResponse, stamp reads with the same revision and commit time.
func FuzzStamp(f *testing.F) {
	for _, m := range []proto.Message{
		&pb.WatchResponse{Revision: 42, CommitTime: timestamppb.New(time.Unix(1e9, 5)), Actor: "ops"},
		&pb.WatchAccessResponse{Revision: 7, Cause: &pb.Mutation{}},
	} {
		b, _ := proto.Marshal(m)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var m pb.WatchResponse
		if proto.Unmarshal(b, &m) != nil {
			return
		}
		checkStamp(t, b)
	})
}

// checkStamp compares stamp with proto.Unmarshal on b, a WatchResponse.
func checkStamp(t *testing.T, b []byte) {
	t.Helper()
	var m pb.WatchResponse
	if err := proto.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	rev, commit, err := stamp(b)
	if err != nil {
		t.Fatalf("stamp(%x): %v", b, err)
	}
	var want time.Time
	if m.CommitTime != nil {
		want = m.CommitTime.AsTime()
	}
	if rev != m.Revision || !commit.Equal(want) || commit.IsZero() != want.IsZero() {
		t.Errorf("stamp(%x) = %d, %v; want %d, %v", b, rev, commit, m.Revision, want)
	}
}

// TestDeliverSplit feeds a stream messages cut across frames at every
// point and checks each is handed on once, whole, in order.
func TestDeliverSplit(t *testing.T) {
	var wire []byte
	for rev := uint64(1); rev <= 3; rev++ {
		b, err := proto.Marshal(&pb.WatchResponse{Revision: rev, Actor: "someone with a long name"})
		if err != nil {
			t.Fatal(err)
		}
		wire = append(wire, 0, 0, 0, 0, byte(len(b)))
		wire = append(wire, b...)
	}
	for cut := 0; cut <= len(wire); cut++ {
		var got []uint64
		s := &frameStream{each: func(rev uint64, _, _ time.Time) { got = append(got, rev) }}
		for _, part := range [][]byte{wire[:cut], wire[cut:]} {
			frame := append([]byte(nil), part...) // the framer reuses its buffer
			if err := s.deliver(frame, time.Now()); err != nil {
				t.Fatalf("cut at %d: %v", cut, err)
			}
			clear(frame)
		}
		if len(got) != 3 || got[0] != 1 || got[1] != 2 || got[2] != 3 || len(s.buf) != 0 {
			t.Fatalf("cut at %d: revisions %v, %d bytes left", cut, got, len(s.buf))
		}
	}
}
