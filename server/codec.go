package server

import (
	"context"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// encoded is a message already marshalled, sent on many streams as it is:
// a commit for every unfiltered Watch stream is encoded once, not once per
// subscriber. Its buffers are shared by every stream that sends it and
// only read: gRPC frees a mem.SliceBuffer by doing nothing, and its
// readers move over their own copy of the slice.
type encoded struct{ wire mem.BufferSlice }

// newEncoded wraps the wire form b.
func newEncoded(b []byte) *encoded { return &encoded{mem.BufferSlice{mem.SliceBuffer(b)}} }

// codec is gRPC's protobuf codec, except that it sends an encoded
// message's bytes unchanged, with nothing allocated per stream, and hands
// a request it cannot decode on to be refused as InvalidArgument.
type codec struct{ encoding.CodecV2 }

// Marshal returns the wire form of v.
func (c codec) Marshal(v any) (mem.BufferSlice, error) {
	if e, ok := v.(*encoded); ok {
		return e.wire, nil
	}
	return c.CodecV2.Marshal(v)
}

// newCodec wraps the registered protobuf codec.
func newCodec() codec { return codec{encoding.GetCodecV2("proto")} }

// malformedField is the field number (the largest protobuf allows) under
// which Unmarshal leaves the reason a request could not be decoded, so
// that rejectMalformed can refuse it as the caller's error: gRPC itself
// reports every decoding failure as Internal, before any interceptor runs.
const malformedField protowire.Number = protowire.MaxValidNumber

// Unmarshal decodes data into v. When data is not a valid message (broken
// wire format, a string that is not UTF-8) v is left empty but for the
// reason, and no error is returned; rejectMalformed then refuses it.
func (c codec) Unmarshal(data mem.BufferSlice, v any) error {
	err := c.CodecV2.Unmarshal(data, v)
	m, ok := v.(proto.Message)
	if err == nil || !ok {
		return err
	}
	proto.Reset(m)
	m.ProtoReflect().SetUnknown(protowire.AppendString(protowire.AppendTag(nil, malformedField, protowire.BytesType), err.Error()))
	return nil
}

// malformed returns the InvalidArgument status of a request Unmarshal
// could not decode, or nil.
func malformed(req any) error {
	m, ok := req.(proto.Message)
	if !ok {
		return nil
	}
	b := m.ProtoReflect().GetUnknown()
	num, typ, n := protowire.ConsumeTag(b)
	if n < 0 || num != malformedField || typ != protowire.BytesType {
		return nil
	}
	why, _ := protowire.ConsumeString(b[n:])
	return status.Errorf(codes.InvalidArgument, "malformed request: %s", why)
}

// rejectMalformed refuses a unary request that could not be decoded.
func rejectMalformed(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	if err := malformed(req); err != nil {
		return nil, err
	}
	return h(ctx, req)
}

// rejectMalformedStream refuses each stream message that could not be decoded.
func rejectMalformedStream(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, h grpc.StreamHandler) error {
	return h(srv, malformedStream{ss})
}

type malformedStream struct{ grpc.ServerStream }

func (s malformedStream) RecvMsg(m any) error {
	if err := s.ServerStream.RecvMsg(m); err != nil {
		return err
	}
	return malformed(m)
}
