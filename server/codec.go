package server

import (
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/mem"
)

// encoded is a message already marshalled, sent on many streams as it is:
// a commit for every unfiltered Watch stream is encoded once, not once per
// subscriber.
type encoded []byte

// codec is gRPC's protobuf codec, except that it sends an encoded
// message's bytes unchanged. The bytes are shared by every stream that
// sends them, and only read.
type codec struct{ encoding.CodecV2 }

// Marshal returns the wire form of v.
func (c codec) Marshal(v any) (mem.BufferSlice, error) {
	if e, ok := v.(encoded); ok {
		return mem.BufferSlice{mem.SliceBuffer(e)}, nil
	}
	return c.CodecV2.Marshal(v)
}

// newCodec wraps the registered protobuf codec.
func newCodec() codec { return codec{encoding.GetCodecV2("proto")} }
