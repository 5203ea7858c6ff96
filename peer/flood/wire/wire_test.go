package wire_test

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"reflect"
	"strings"
	"testing"

	"github.com/shoalp2p/shoal/peer/flood/wire"
)

var (
	id  = [16]byte{0: 0xaa, 15: 0x0f}
	ih  = [20]byte{0: 0x11, 19: 0x99}
	v4  = netip.MustParseAddrPort("127.0.0.1:4001")
	v6  = netip.MustParseAddrPort("[2001:db8::1]:6881")
	v46 = netip.MustParseAddrPort("[::ffff:10.0.0.1]:80") // IPv4-mapped: sent as family 6
)

// addrs is n distinct addresses, IPv4 and IPv6 alternately.
func addrs(n int) []netip.AddrPort {
	as := make([]netip.AddrPort, n)
	for i := range as {
		if i%2 == 0 {
			as[i] = netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)}), uint16(1000+i))
		} else {
			as[i] = netip.AddrPortFrom(netip.AddrFrom16([16]byte{0: 0xfd, 14: byte(i >> 8), 15: byte(i)}), uint16(2000+i))
		}
	}
	return as
}

// messages holds every type, with empty, full and IPv6 address lists.
var messages = map[string]wire.Message{
	"hello":           wire.Hello{Version: wire.Version, NodeID: id, Listen: v4, BTPort: 6881},
	"hello-v6":        wire.Hello{Version: 1, NodeID: id, Listen: v6, BTPort: 1},
	"hello-no-listen": wire.Hello{Version: 255, NodeID: id},
	"hello-any":       wire.Hello{Version: 1, Listen: netip.MustParseAddrPort("0.0.0.0:4001")},
	"hello-4in6":      wire.Hello{Version: 1, Listen: v46, BTPort: 65535},
	"ping":            wire.Ping{Nonce: 0x0102030405060708},
	"ping-zero":       wire.Ping{},
	"pong-empty":      wire.Pong{Nonce: 1},
	"pong-one":        wire.Pong{Nonce: 2, Addrs: []netip.AddrPort{v4}},
	"pong-v6":         wire.Pong{Nonce: 3, Addrs: []netip.AddrPort{v6, v46, v4}},
	"pong-full":       wire.Pong{Nonce: ^uint64(0), Addrs: addrs(wire.MaxAddrs)},
	"query":           wire.Query{ID: id, TTL: 5, Hops: 0, InfoHash: ih},
	"query-walk":      wire.Query{ID: id, TTL: 7, Hops: 3, InfoHash: ih, Walk: true},
	"query-zero":      wire.Query{},
	"hit-empty":       wire.Hit{ID: id, InfoHash: ih, Hops: 2},
	"hit":             wire.Hit{ID: id, InfoHash: ih, Hops: 1, Peers: []netip.AddrPort{v4}},
	"hit-v6":          wire.Hit{ID: id, InfoHash: ih, Hops: 7, Peers: []netip.AddrPort{v6}},
	"hit-full":        wire.Hit{ID: id, InfoHash: ih, Hops: 255, Peers: addrs(wire.MaxAddrs)},
	"bye":             wire.Bye{Reason: "full"},
	"bye-empty":       wire.Bye{},
	"bye-max":         wire.Bye{Reason: strings.Repeat("x", wire.MaxReason)},
	"bye-binary":      wire.Bye{Reason: "\x00\xff\n"},
}

func TestRoundTrip(t *testing.T) {
	for name, m := range messages {
		t.Run(name, func(t *testing.T) {
			b, err := wire.Marshal(m)
			if err != nil {
				t.Fatal(err)
			}
			if wire.Type(b[0]) != m.Type() {
				t.Fatalf("type byte %d, want %d", b[0], m.Type())
			}
			got, err := wire.Unmarshal(b)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, m) {
				t.Fatalf("decoded %#v, want %#v", got, m)
			}
			// decode -> encode -> the same bytes: the encoding is unique.
			again, err := wire.Marshal(got)
			if err != nil || !bytes.Equal(again, b) {
				t.Fatalf("re-encoded %x, %v; want %x", again, err, b)
			}
			// A pointer encodes as its value.
			ptr := reflect.New(reflect.TypeOf(m))
			ptr.Elem().Set(reflect.ValueOf(m))
			if pb, err := wire.Marshal(ptr.Interface().(wire.Message)); err != nil || !bytes.Equal(pb, b) {
				t.Fatalf("pointer encoded %x, %v; want %x", pb, err, b)
			}
		})
	}
}

// An empty list decodes as nil and encodes like nil.
func TestEmptyList(t *testing.T) {
	a, _ := wire.Marshal(wire.Pong{Nonce: 1, Addrs: []netip.AddrPort{}})
	b, _ := wire.Marshal(wire.Pong{Nonce: 1})
	if !bytes.Equal(a, b) {
		t.Fatalf("empty %x, nil %x", a, b)
	}
	m, err := wire.Unmarshal(a)
	if err != nil || m.(wire.Pong).Addrs != nil {
		t.Fatalf("got %#v, %v", m, err)
	}
}

// The exact bytes, so that the format cannot drift unnoticed.
func TestEncoding(t *testing.T) {
	for _, tc := range []struct {
		m   wire.Message
		hex string
	}{
		{wire.Ping{Nonce: 0x0102030405060708}, "02 0102030405060708"},
		{wire.Pong{Nonce: 9, Addrs: []netip.AddrPort{v4, v6}}, "03 0000000000000009 02 04 7f000001 0fa1 06 20010db8000000000000000000000001 1ae1"},
		{wire.Query{ID: id, TTL: 5, Hops: 1, InfoHash: ih, Walk: true}, "04 aa00000000000000000000000000000f 05 01 1100000000000000000000000000000000000099 01"},
		{wire.Hit{ID: id, InfoHash: ih, Hops: 2}, "05 aa00000000000000000000000000000f 1100000000000000000000000000000000000099 02 00"},
		{wire.Bye{Reason: "ok"}, "06 02 6f6b"},
		{wire.Hello{Version: 1, NodeID: id, Listen: v4, BTPort: 6881}, "01 " + hex.EncodeToString([]byte(wire.Protocol)) + " 01 aa00000000000000000000000000000f 04 7f000001 0fa1 1ae1"},
		{wire.Hello{Version: 1, NodeID: id, BTPort: 6881}, "01 " + hex.EncodeToString([]byte(wire.Protocol)) + " 01 aa00000000000000000000000000000f 00 1ae1"},
	} {
		b, err := wire.Marshal(tc.m)
		if err != nil {
			t.Fatal(err)
		}
		if want := strings.ReplaceAll(tc.hex, " ", ""); hex.EncodeToString(b) != want {
			t.Errorf("%v: got %x, want %s", tc.m.Type(), b, want)
		}
	}
}

func TestMarshalRefuses(t *testing.T) {
	zoned := netip.MustParseAddrPort("[fe80::1%eth0]:1")
	for name, m := range map[string]wire.Message{
		"too-many-addrs": wire.Pong{Addrs: addrs(wire.MaxAddrs + 1)},
		"too-many-peers": wire.Hit{Peers: addrs(wire.MaxAddrs + 1)},
		"invalid-addr":   wire.Pong{Addrs: []netip.AddrPort{{}}},
		"zoned-addr":     wire.Hit{Peers: []netip.AddrPort{zoned}},
		"zoned-listen":   wire.Hello{Version: 1, Listen: zoned},
		"port-only":      wire.Hello{Version: 1, Listen: netip.AddrPortFrom(netip.Addr{}, 1)},
		"version-0":      wire.Hello{},
		"long-reason":    wire.Bye{Reason: strings.Repeat("x", wire.MaxReason+1)},
		"nil":            nil,
		"nil-pointer":    (*wire.Ping)(nil),
		"foreign":        foreign{},
	} {
		t.Run(name, func(t *testing.T) {
			b, err := wire.Marshal(m)
			if !errors.Is(err, wire.ErrMalformed) || b != nil {
				t.Fatalf("got %x, %v; want ErrMalformed", b, err)
			}
			if n, err := wire.WriteFrame(io.Discard, m); !errors.Is(err, wire.ErrMalformed) || n != 0 {
				t.Fatalf("WriteFrame: %d, %v", n, err)
			}
		})
	}
}

type foreign struct{}

func (foreign) Type() wire.Type { return wire.TypePing }

// must encodes m or fails the test.
func must(t testing.TB, m wire.Message) []byte {
	t.Helper()
	b, err := wire.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestUnmarshalRefuses(t *testing.T) {
	hello := must(t, messages["hello"])
	pong := must(t, wire.Pong{Nonce: 1, Addrs: []netip.AddrPort{v4}})
	query := must(t, messages["query"])
	hit := must(t, messages["hit"])
	over := must(t, wire.Pong{Addrs: addrs(wire.MaxAddrs)})
	over[9] = wire.MaxAddrs + 1
	over = append(over, over[10:17]...) // the 33rd address is there, the count is still too high

	set := func(b []byte, i int, v byte) []byte {
		c := bytes.Clone(b)
		c[i] = v
		return c
	}
	helloAt := 1 + len(wire.Protocol) // version byte
	for name, b := range map[string][]byte{
		"empty":           {},
		"type-0":          {0},
		"type-unknown":    {7, 0, 0, 0, 0, 0, 0, 0, 0},
		"type-255":        {255},
		"ping-short":      {2, 1, 2, 3},
		"ping-long":       {2, 0, 0, 0, 0, 0, 0, 0, 0, 0},
		"pong-no-count":   pong[:9],
		"pong-short-addr": pong[:len(pong)-1],
		"pong-trailing":   append(bytes.Clone(pong), 0),
		"pong-family-0":   set(pong, 10, 0),
		"pong-family-5":   set(pong, 10, 5),
		"pong-count-high": set(pong, 9, 2),
		"pong-over-max":   over,
		"hello-version-0": set(hello, helloAt, 0),
		"hello-protocol":  set(hello, 1, 'S'),
		"hello-family":    set(hello, helloAt+17, 9),
		"hello-short":     hello[:len(hello)-1],
		"hello-only-type": {1},
		"query-walk-2":    set(query, len(query)-1, 2),
		"query-short":     query[:len(query)-1],
		"query-trailing":  append(bytes.Clone(query), 1),
		"hit-short":       hit[:len(hit)-3],
		"hit-no-count":    hit[:1+16+20+1],
		"bye-short":       {6, 3, 'a', 'b'},
		"bye-no-length":   {6},
		"bye-trailing":    {6, 1, 'a', 'b'},
	} {
		t.Run(name, func(t *testing.T) {
			m, err := wire.Unmarshal(b)
			if !errors.Is(err, wire.ErrMalformed) || m != nil {
				t.Fatalf("got %#v, %v; want ErrMalformed", m, err)
			}
		})
	}
}

// Every proper prefix of every valid payload is refused.
func TestTruncated(t *testing.T) {
	for name, m := range messages {
		b := must(t, m)
		for i := range len(b) {
			if _, err := wire.Unmarshal(b[:i]); !errors.Is(err, wire.ErrMalformed) {
				t.Fatalf("%s cut at %d of %d: %v", name, i, len(b), err)
			}
		}
	}
}

// The largest valid message is far under MaxFrame.
func TestLargest(t *testing.T) {
	b := must(t, wire.Hit{Peers: addrs(wire.MaxAddrs)})
	if len(b) > 1024 {
		t.Fatalf("largest payload %d bytes", len(b))
	}
}

func TestTypeString(t *testing.T) {
	for ty, want := range map[wire.Type]string{
		wire.TypeHello: "hello", wire.TypeQuery: "query", wire.TypeBye: "bye", 0: "type(0)", wire.NumTypes: "type(7)",
	} {
		if got := ty.String(); got != want {
			t.Errorf("%d: %q, want %q", uint8(ty), got, want)
		}
	}
	for _, m := range messages {
		if !m.Type().Known() || m.Type() >= wire.NumTypes {
			t.Errorf("%v not known", m.Type())
		}
	}
}

func TestFrameRoundTrip(t *testing.T) {
	var buf bytes.Buffer
	var order []wire.Message
	total := 0
	for _, m := range messages {
		n, err := wire.WriteFrame(&buf, m)
		if err != nil {
			t.Fatal(err)
		}
		if want := wire.HeaderLen + len(must(t, m)); n != want {
			t.Fatalf("%v: wrote %d, want %d", m.Type(), n, want)
		}
		total += n
		order = append(order, m)
	}
	if buf.Len() != total {
		t.Fatalf("buffer %d, reported %d", buf.Len(), total)
	}
	for _, want := range order {
		got, n, err := wire.ReadFrame(&buf, wire.MaxFrame)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("read %#v, want %#v", got, want)
		}
		if n != wire.HeaderLen+len(must(t, want)) {
			t.Fatalf("read %d bytes", n)
		}
	}
	if m, n, err := wire.ReadFrame(&buf, wire.MaxFrame); err != io.EOF || n != 0 || m != nil {
		t.Fatalf("at the end: %v, %d, %v", m, n, err)
	}
}

func TestAppendFrame(t *testing.T) {
	prefix := []byte("xyz")
	b, err := wire.AppendFrame(bytes.Clone(prefix), messages["query"])
	if err != nil {
		t.Fatal(err)
	}
	var w bytes.Buffer
	if _, err := wire.WriteFrame(&w, messages["query"]); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b, append(prefix, w.Bytes()...)) {
		t.Fatalf("AppendFrame %x, WriteFrame %x", b, w.Bytes())
	}
}

// writes counts Write calls.
type writes struct {
	bytes.Buffer
	calls int
}

func (w *writes) Write(p []byte) (int, error) { w.calls++; return w.Buffer.Write(p) }

func TestWriteFrameOneWrite(t *testing.T) {
	for _, m := range messages {
		var w writes
		if _, err := wire.WriteFrame(&w, m); err != nil {
			t.Fatal(err)
		}
		if w.calls != 1 {
			t.Fatalf("%v: %d writes", m.Type(), w.calls)
		}
	}
}

// headerOnly yields a frame header and fails the test if anything past it is read.
type headerOnly struct {
	t   *testing.T
	hdr []byte
}

func (r *headerOnly) Read(p []byte) (int, error) {
	if len(r.hdr) == 0 {
		r.t.Fatal("read past the header")
	}
	n := copy(p, r.hdr)
	r.hdr = r.hdr[n:]
	return n, nil
}

func header(n uint32) []byte { return []byte{byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)} }

func TestFrameCap(t *testing.T) {
	// Over the cap: refused after the header, the body never read.
	for _, tc := range []struct {
		size uint32
		max  int
	}{
		{wire.MaxFrame + 1, wire.MaxFrame},
		{1 << 31, wire.MaxFrame},
		{^uint32(0), wire.MaxFrame},
		{101, 100},
		{wire.MaxFrame + 1, 0},             // 0: MaxFrame
		{wire.MaxFrame + 1, -1},            // negative: MaxFrame
		{wire.MaxFrame + 1, 1 << 30},       // never above MaxFrame
		{wire.MaxFrame + 1, wire.MaxFrame}, // and again, at the hard cap
	} {
		m, n, err := wire.ReadFrame(&headerOnly{t: t, hdr: header(tc.size)}, tc.max)
		if !errors.Is(err, wire.ErrFrameTooLarge) || n != wire.HeaderLen || m != nil {
			t.Errorf("size %d max %d: %v, %d, %v", tc.size, tc.max, m, n, err)
		}
	}
	// At the cap: the whole body is read, and the frame is then judged by its content.
	for _, max := range []int{wire.MaxFrame, 0} {
		body := make([]byte, wire.MaxFrame)
		body[0] = byte(wire.TypeBye)
		r := io.MultiReader(bytes.NewReader(header(wire.MaxFrame)), bytes.NewReader(body))
		_, n, err := wire.ReadFrame(r, max)
		if errors.Is(err, wire.ErrFrameTooLarge) || !errors.Is(err, wire.ErrMalformed) || n != wire.HeaderLen+wire.MaxFrame {
			t.Fatalf("max %d: frame at the cap: %d, %v", max, n, err)
		}
	}
	// A valid message with the cap at its exact size, and one byte under it.
	b := must(t, messages["hit-full"])
	frame := append(header(uint32(len(b))), b...)
	if m, n, err := wire.ReadFrame(bytes.NewReader(frame), len(b)); err != nil || n != len(frame) || !reflect.DeepEqual(m, messages["hit-full"]) {
		t.Fatalf("cap = size: %d, %v", n, err)
	}
	if _, n, err := wire.ReadFrame(bytes.NewReader(frame), len(b)-1); !errors.Is(err, wire.ErrFrameTooLarge) || n != wire.HeaderLen {
		t.Fatalf("cap = size-1: %d, %v", n, err)
	}
	// Marshal refuses nothing valid for size: every message is far below the cap.
}

func TestFrameTruncated(t *testing.T) {
	var w bytes.Buffer
	if _, err := wire.WriteFrame(&w, messages["pong-v6"]); err != nil {
		t.Fatal(err)
	}
	frame := w.Bytes()
	for i := range len(frame) {
		m, n, err := wire.ReadFrame(bytes.NewReader(frame[:i]), wire.MaxFrame)
		want := io.ErrUnexpectedEOF
		if i == 0 {
			want = io.EOF
		}
		if err != want || n != i || m != nil {
			t.Fatalf("cut at %d: %v, %d, %v", i, m, n, err)
		}
	}
}

// A frame whose body is garbled is read whole (the stream stays in step) and refused.
func TestFrameMalformed(t *testing.T) {
	body := []byte{2, 1, 2, 3} // a short ping
	r := bytes.NewReader(append(header(uint32(len(body))), body...))
	m, n, err := wire.ReadFrame(r, wire.MaxFrame)
	if !errors.Is(err, wire.ErrMalformed) || n != wire.HeaderLen+len(body) || m != nil {
		t.Fatalf("%v, %d, %v", m, n, err)
	}
	// An empty frame too.
	if _, n, err := wire.ReadFrame(bytes.NewReader(header(0)), wire.MaxFrame); !errors.Is(err, wire.ErrMalformed) || n != wire.HeaderLen {
		t.Fatalf("empty frame: %d, %v", n, err)
	}
}

// A reader's error other than EOF is returned as is.
func TestFrameReadError(t *testing.T) {
	boom := errors.New("boom")
	r := io.MultiReader(bytes.NewReader(header(10)), &errReader{boom})
	if _, n, err := wire.ReadFrame(r, wire.MaxFrame); err != boom || n != wire.HeaderLen {
		t.Fatalf("%d, %v", n, err)
	}
}

type errReader struct{ err error }

func (r *errReader) Read([]byte) (int, error) { return 0, r.err }

func ExampleWriteFrame() {
	var link bytes.Buffer
	wire.WriteFrame(&link, wire.Query{TTL: 5, InfoHash: [20]byte{1}})
	m, n, err := wire.ReadFrame(&link, wire.MaxFrame)
	if err != nil {
		panic(err)
	}
	switch m := m.(type) {
	case wire.Query:
		fmt.Println(n, "bytes:", m.Type(), "ttl", m.TTL)
	}
	// Output: 44 bytes: query ttl 5
}
