package server

import (
	"context"
	"time"

	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	pb "github.com/canopy-authz/canopy/proto/canopy/v1"
)

// ProbeStore reads the store's committed revision every interval until
// ctx ends, and says what it found: canopy_store_up (1 when the read
// succeeded) and canopy_store_revision (the newest revision committed
// anywhere, so that canopy_store_revision - canopy_revision is how far
// this node's index is behind). While the store cannot be read, health
// reports the DirectoryService, whose writes need it, NOT_SERVING; the
// AccessService goes on answering from the index at its last revision.
func (s *Server) ProbeStore(ctx context.Context, interval time.Duration) {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	up := true
	for {
		head, err := s.log.Revision()
		if m := s.opts.Metrics; m != nil {
			m.storeUp.Set(b2f(err == nil))
			if err == nil {
				m.storeHead.Set(float64(head))
			}
		}
		if (err == nil) != up && s.loaded.Load() && !s.shutdown.Load() {
			up = err == nil
			status := healthpb.HealthCheckResponse_SERVING
			if !up {
				status = healthpb.HealthCheckResponse_NOT_SERVING
				s.logger.Error("the store cannot be read: writes fail, checks answer at the last revision", "revision", s.ix.Revision(), "err", err)
			} else {
				s.logger.Info("the store can be read again", "revision", head)
			}
			s.health.SetServingStatus(pb.DirectoryService_ServiceDesc.ServiceName, status)
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// b2f is 1 for true and 0 for false.
func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
