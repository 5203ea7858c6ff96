package wire_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"reflect"
	"testing"

	"github.com/shoalp2p/shoal/peer/flood/wire"
)

// Seeds beside the committed corpus in testdata/fuzz/: every message of the round-trip table.

func FuzzUnmarshal(f *testing.F) {
	for _, m := range messages {
		f.Add(must(f, m))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := wire.Unmarshal(b)
		if err != nil {
			if m != nil || !errors.Is(err, wire.ErrMalformed) {
				t.Fatalf("got %#v, %v", m, err)
			}
			return
		}
		// The encoding is unique: what decodes encodes back to the same bytes,
		// and those decode to an equal message.
		again, err := wire.Marshal(m)
		if err != nil {
			t.Fatalf("decoded %#v does not encode: %v", m, err)
		}
		if !bytes.Equal(again, b) {
			t.Fatalf("%x decoded to %#v, which encodes to %x", b, m, again)
		}
		m2, err := wire.Unmarshal(again)
		if err != nil || !reflect.DeepEqual(m, m2) {
			t.Fatalf("re-decoded %#v, %v; want %#v", m2, err, m)
		}
	})
}

func FuzzReadFrame(f *testing.F) {
	for _, m := range messages {
		var w bytes.Buffer
		if _, err := wire.WriteFrame(&w, m); err != nil {
			f.Fatal(err)
		}
		f.Add(w.Bytes(), uint16(wire.MaxFrame))
		f.Add(w.Bytes(), uint16(w.Len()-wire.HeaderLen-1))
	}
	f.Add([]byte{0, 0, 0, 9, 2, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 1, 6, 0}, uint16(0))
	f.Add([]byte{0, 0, 0x40, 0x01}, uint16(0))
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 1}, uint16(100))
	f.Fuzz(func(t *testing.T, data []byte, max uint16) {
		limit := int(max)
		if limit == 0 || limit > wire.MaxFrame {
			limit = wire.MaxFrame
		}
		// Read frames until the stream ends or fails; every outcome is accounted for.
		r := bytes.NewReader(data)
		off := 0
		for {
			m, n, err := wire.ReadFrame(r, int(max))
			rest := data[off:]
			if n < 0 || n > len(rest) {
				t.Fatalf("read %d of %d bytes", n, len(rest))
			}
			var size int
			if len(rest) >= wire.HeaderLen {
				size = int(binary.BigEndian.Uint32(rest))
			}
			switch {
			case err == nil:
				b, merr := wire.Marshal(m)
				if merr != nil || n != wire.HeaderLen+len(b) || !bytes.Equal(rest[wire.HeaderLen:n], b) {
					t.Fatalf("frame %x read as %#v (%d bytes), which encodes to %x, %v", rest[:n], m, n, b, merr)
				}
			case err == io.EOF:
				if len(rest) != 0 || n != 0 {
					t.Fatalf("EOF with %d bytes left, %d read", len(rest), n)
				}
				return
			case err == io.ErrUnexpectedEOF:
				if n != len(rest) || (len(rest) >= wire.HeaderLen && size <= len(rest)-wire.HeaderLen) {
					t.Fatalf("unexpected EOF after %d of %d bytes (frame of %d)", n, len(rest), size)
				}
				return
			case errors.Is(err, wire.ErrFrameTooLarge):
				if n != wire.HeaderLen || size <= limit {
					t.Fatalf("%d-byte frame refused (cap %d) after %d bytes", size, limit, n)
				}
				return
			case errors.Is(err, wire.ErrMalformed):
				if n != wire.HeaderLen+size || size > limit {
					t.Fatalf("malformed %d-byte frame after %d bytes", size, n)
				}
			default:
				t.Fatalf("error %v", err)
			}
			if (err == nil) == (m == nil) {
				t.Fatalf("message %#v with error %v", m, err)
			}
			off += n
		}
	})
}
