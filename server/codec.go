package server

import (
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/mem"
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
// message's bytes unchanged, with nothing allocated per stream.
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
