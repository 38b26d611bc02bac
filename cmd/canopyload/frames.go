package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"sync"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// Flow-control windows a frameConn grants the server. They are large so
// that the server never waits for a window update, and are topped up
// whenever half has been used.
const (
	frameStreamWindow = 1 << 24
	frameConnWindow   = 1 << 30
)

// frameConn is an HTTP/2 connection that opens server-streaming gRPC calls
// and reads their responses straight off the frames, on one goroutine for
// the whole connection, decoding only each response's revision and commit
// time. It stands in for subscribers that run on other machines: a
// grpc-go client spends some 6 µs of CPU on each response it receives
// (a goroutine woken per stream, the message decoded), more than the
// server spends sending it, and on a two-core machine that cost would be
// taken from the server it measures.
type frameConn struct {
	conn      net.Conn
	authority string

	wmu  sync.Mutex // guards fr's writes, henc, hbuf and next
	fr   *http2.Framer
	henc *hpack.Encoder
	hbuf bytes.Buffer
	next uint32 // the next stream's id

	mu      sync.Mutex // guards streams and err
	streams map[uint32]*frameStream
	err     error // why the connection ended; set once

	unacked uint32        // connection-level bytes not yet returned; the reader's own
	done    chan struct{} // closed when the reader has stopped
}

// frameStream is one call on a frameConn. Its functions run one call at a
// time: on the connection's reader goroutine, or for end on whoever
// cancels the call.
type frameStream struct {
	mu    sync.Mutex // held while each or end runs
	ended bool       // end has been called; guarded by mu
	each  func(rev uint64, commit, recv time.Time)
	end   func(err error) // a nil err: the server ended the call cleanly

	buf     []byte // the start of a message not yet whole; the reader's own
	unacked uint32 // bytes not yet returned to the stream's window; the reader's own
}

// finish ends s with err, unless it has ended already.
func (s *frameStream) finish(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.ended {
		s.ended = true
		s.end(err)
	}
}

// dialFrames connects to addr and starts reading.
func dialFrames(addr string) (*frameConn, error) {
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", addr, err)
	}
	c := &frameConn{conn: conn, authority: addr, next: 1, streams: map[uint32]*frameStream{}, done: make(chan struct{})}
	c.fr = http2.NewFramer(conn, bufio.NewReaderSize(conn, 64<<10))
	c.fr.SetReuseFrames()
	c.fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	c.henc = hpack.NewEncoder(&c.hbuf)
	err = func() error {
		if _, err := conn.Write([]byte(http2.ClientPreface)); err != nil {
			return err
		}
		if err := c.fr.WriteSettings(
			http2.Setting{ID: http2.SettingEnablePush, Val: 0},
			http2.Setting{ID: http2.SettingInitialWindowSize, Val: frameStreamWindow},
		); err != nil {
			return err
		}
		return c.fr.WriteWindowUpdate(0, frameConnWindow-65535)
	}()
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("start HTTP/2 with %s: %w", addr, err)
	}
	go c.read()
	return c, nil
}

// open starts a call of method with request req. Unless it returns an
// error, each is called with every response's revision and commit time,
// and end once when the call ends: by the server, the connection, or ctx
// (a Canceled status).
func (c *frameConn) open(ctx context.Context, method string, req proto.Message, each func(rev uint64, commit, recv time.Time), end func(error)) error {
	body, err := proto.Marshal(req)
	if err != nil {
		return err
	}
	msg := make([]byte, 5+len(body)) // gRPC's prefix: not compressed, length
	binary.BigEndian.PutUint32(msg[1:5], uint32(len(body)))
	copy(msg[5:], body)

	c.wmu.Lock()
	defer c.wmu.Unlock()
	id := c.next
	c.next += 2
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		return c.err
	}
	c.streams[id] = &frameStream{each: each, end: end}
	c.mu.Unlock()
	// From here on the call is open, and ends through end alone.
	fail := func(err error) error {
		if s := c.take(id); s != nil {
			s.finish(status.Errorf(codes.Unavailable, "open %s: %v", method, err))
		}
		return nil
	}
	c.hbuf.Reset()
	for _, f := range [][2]string{
		{":method", "POST"}, {":scheme", "http"}, {":path", method}, {":authority", c.authority},
		{"content-type", "application/grpc"}, {"te", "trailers"},
	} {
		if err := c.henc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]}); err != nil {
			return fail(err)
		}
	}
	if err := c.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: c.hbuf.Bytes(), EndHeaders: true}); err != nil {
		return fail(err)
	}
	if err := c.fr.WriteData(id, true, msg); err != nil {
		return fail(err)
	}
	context.AfterFunc(ctx, func() { c.cancel(id) })
	return nil
}

// cancel ends stream id from this side, as a cancelled context would.
func (c *frameConn) cancel(id uint32) {
	if s := c.take(id); s != nil {
		c.write(func() error { return c.fr.WriteRSTStream(id, http2.ErrCodeCancel) }) // the connection may be gone: nothing to do then
		s.finish(status.Error(codes.Canceled, "cancelled by the reader"))
	}
}

// take removes stream id and returns it, or nil if it has already ended.
// Whoever takes a stream ends it.
func (c *frameConn) take(id uint32) *frameStream {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.streams[id]
	delete(c.streams, id)
	return s
}

// close ends the connection and every call on it, and waits for the
// reader to stop.
func (c *frameConn) close() {
	c.conn.Close()
	<-c.done
}

// read reads frames until the connection ends, then ends every call left
// with why it ended.
func (c *frameConn) read() {
	defer close(c.done)
	err := c.readFrames()
	c.mu.Lock()
	c.err = fmt.Errorf("connection to %s: %w", c.authority, err)
	left := c.streams
	c.streams = nil
	c.mu.Unlock()
	for _, s := range left {
		s.finish(status.Error(codes.Unavailable, c.err.Error()))
	}
}

// readFrames reads and answers frames until the connection fails or the
// server sends GOAWAY, and returns why it stopped.
func (c *frameConn) readFrames() error {
	for {
		f, err := c.fr.ReadFrame()
		if err != nil {
			return err
		}
		switch f := f.(type) {
		case *http2.DataFrame:
			if err := c.data(f); err != nil {
				return err
			}
		case *http2.MetaHeadersFrame:
			if f.StreamEnded() {
				if s := c.take(f.StreamID); s != nil {
					s.finish(trailerStatus(f))
				}
			}
		case *http2.RSTStreamFrame:
			if s := c.take(f.StreamID); s != nil {
				s.finish(status.Errorf(codes.Unavailable, "stream reset by the server: %v", f.ErrCode))
			}
		case *http2.SettingsFrame:
			if !f.IsAck() {
				if err := c.write(func() error { return c.fr.WriteSettingsAck() }); err != nil {
					return err
				}
			}
		case *http2.PingFrame:
			if !f.IsAck() {
				if err := c.write(func() error { return c.fr.WritePing(true, f.Data) }); err != nil {
					return err
				}
			}
		case *http2.GoAwayFrame:
			return fmt.Errorf("server going away: %v", f.ErrCode)
		}
	}
}

// write runs one write on the framer.
func (c *frameConn) write(w func() error) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return w()
}

// data hands on the whole messages a DATA frame completes, and returns
// what the server has used of the windows.
func (c *frameConn) data(f *http2.DataFrame) error {
	recv := time.Now()
	n := f.Length // padding counts against the windows too
	c.unacked += n
	if c.unacked >= frameConnWindow/2 {
		k := c.unacked
		c.unacked = 0
		if err := c.write(func() error { return c.fr.WriteWindowUpdate(0, k) }); err != nil {
			return err
		}
	}
	c.mu.Lock()
	s := c.streams[f.StreamID]
	c.mu.Unlock()
	if s == nil {
		return nil // ended on this side; what was in flight is dropped
	}
	s.unacked += n
	if s.unacked >= frameStreamWindow/2 && !f.StreamEnded() {
		k := s.unacked
		s.unacked = 0
		if err := c.write(func() error { return c.fr.WriteWindowUpdate(f.StreamID, k) }); err != nil {
			return err
		}
	}
	if err := s.deliver(f.Data(), recv); err != nil {
		return fmt.Errorf("stream %d: %w", f.StreamID, err)
	}
	if f.StreamEnded() {
		if s := c.take(f.StreamID); s != nil {
			s.finish(errors.New("the server ended the stream without trailers"))
		}
	}
	return nil
}

// deliver hands on every message that data, after what s holds of an
// earlier frame, makes whole, unless s has ended. data is the framer's
// (it is reused for the next frame): only an unfinished message's bytes
// are copied.
func (s *frameStream) deliver(data []byte, recv time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	b := data
	if len(s.buf) > 0 {
		s.buf = append(s.buf, data...)
		b = s.buf
	}
	for len(b) >= 5 && !s.ended {
		size := int(binary.BigEndian.Uint32(b[1:5]))
		if len(b) < 5+size {
			break
		}
		if b[0] != 0 {
			return errors.New("a compressed message, which this reader never asked for")
		}
		rev, commit, err := stamp(b[5 : 5+size])
		if err != nil {
			return err
		}
		s.each(rev, commit, recv)
		b = b[5+size:]
	}
	s.buf = append(s.buf[:0], b...) // b may lie in s.buf: append copies forward
	return nil
}

// trailerStatus is the gRPC status a call's last headers carry.
func trailerStatus(f *http2.MetaHeadersFrame) error {
	code, err := strconv.Atoi(f.PseudoValue("status"))
	if f.PseudoValue("status") != "" && (err != nil || code != 200) {
		return status.Errorf(codes.Unknown, "HTTP status %q", f.PseudoValue("status"))
	}
	g := regular(f, "grpc-status")
	code, err = strconv.Atoi(g)
	if err != nil {
		return status.Errorf(codes.Internal, "trailers without a grpc-status (%q)", g)
	}
	if code == 0 {
		return nil
	}
	msg, err := url.PathUnescape(regular(f, "grpc-message"))
	if err != nil {
		msg = regular(f, "grpc-message")
	}
	return status.Error(codes.Code(code), msg)
}

// regular is the value of f's header name, or "".
func regular(f *http2.MetaHeadersFrame, name string) string {
	for _, h := range f.RegularFields() {
		if h.Name == name {
			return h.Value
		}
	}
	return ""
}

// stamp reads a stream response's revision (field 1) and commit time
// (field 2, a google.protobuf.Timestamp), the fields WatchResponse and
// WatchAccessResponse share, and skips the rest. As protobuf decoding
// does, a later scalar replaces an earlier one and repeated messages are
// merged. A response without a commit time gives the zero time.
func stamp(b []byte) (rev uint64, commit time.Time, err error) {
	var sec, nsec int64
	set := false
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return 0, time.Time{}, protowire.ParseError(n)
		}
		b = b[n:]
		switch {
		case num == 1 && typ == protowire.VarintType:
			rev, n = protowire.ConsumeVarint(b)
		case num == 2 && typ == protowire.BytesType:
			var ts []byte
			if ts, n = protowire.ConsumeBytes(b); n >= 0 {
				set = true
				err = mergeTimestamp(ts, &sec, &nsec)
			}
		default:
			n = protowire.ConsumeFieldValue(num, typ, b)
		}
		if n < 0 {
			return 0, time.Time{}, protowire.ParseError(n)
		}
		if err != nil {
			return 0, time.Time{}, err
		}
		b = b[n:]
	}
	if set {
		commit = time.Unix(sec, nsec)
	}
	return rev, commit, nil
}

// mergeTimestamp decodes a google.protobuf.Timestamp, seconds (field 1)
// and nanos (field 2), over sec and nsec.
func mergeTimestamp(b []byte, sec, nsec *int64) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return protowire.ParseError(n)
		}
		b = b[n:]
		if typ != protowire.VarintType || (num != 1 && num != 2) {
			n = protowire.ConsumeFieldValue(num, typ, b)
		} else {
			var v uint64
			v, n = protowire.ConsumeVarint(b)
			if num == 1 {
				*sec = int64(v)
			} else {
				*nsec = int64(int32(v))
			}
		}
		if n < 0 {
			return protowire.ParseError(n)
		}
		b = b[n:]
	}
	return nil
}
