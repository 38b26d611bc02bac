package server

import (
	"context"
	"errors"
	"log/slog"
	"syscall"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/canopy-authz/canopy/graph"
)

// toStatus turns an error from the index, the store or a request into the
// gRPC status a caller can act on. It is the one place that does so; the
// message names the operation and the offending id. Errors that are not
// the caller's to act on become Internal, logged, with no detail sent.
func toStatus(ctx context.Context, log *slog.Logger, err error) error {
	if err == nil {
		return nil
	}
	if _, ok := status.FromError(err); ok {
		return err
	}
	var bad *badRequest
	code := codes.Internal
	switch {
	case errors.As(err, &bad), errors.Is(err, graph.ErrInvalid), errors.Is(err, graph.ErrUnknownRight):
		code = codes.InvalidArgument
	case errors.Is(err, graph.ErrOutside), errors.Is(err, graph.ErrNotAllowed):
		code = codes.PermissionDenied
	case errors.Is(err, graph.ErrNotFound):
		code = codes.NotFound
	case errors.Is(err, graph.ErrAlreadyExists):
		code = codes.AlreadyExists
	case errors.Is(err, graph.ErrCycle), errors.Is(err, graph.ErrCrossOrg), errors.Is(err, graph.ErrNotEmpty),
		errors.Is(err, graph.ErrPlacement), errors.Is(err, graph.ErrPrecondition):
		code = codes.FailedPrecondition
	case errors.Is(err, graph.ErrConflict):
		code = codes.Aborted
	case errors.Is(err, graph.ErrStorage) && errors.Is(err, syscall.ENOSPC):
		code = codes.ResourceExhausted
	case errors.Is(err, graph.ErrClosed), errors.Is(err, graph.ErrStorage):
		code = codes.Unavailable
	case errors.Is(err, context.DeadlineExceeded):
		code = codes.DeadlineExceeded
	case errors.Is(err, context.Canceled):
		code = codes.Canceled
	}
	if errors.Is(err, graph.ErrStorage) {
		if errors.Is(err, graph.ErrUnknownOutcome) {
			log.ErrorContext(ctx, "storage failed; the write may yet be committed", "err", err)
		} else {
			log.ErrorContext(ctx, "storage failed; nothing was committed", "err", err)
		}
	}
	if code == codes.Internal {
		log.ErrorContext(ctx, "internal error", "err", err)
		return status.Error(codes.Internal, "internal error")
	}
	return status.Error(code, err.Error())
}
