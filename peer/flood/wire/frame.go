package wire

import (
	"encoding/binary"
	"fmt"
	"io"
)

// AppendFrame appends m's frame (header and payload) to b, for a message sent to many
// neighbours: encode once, write the bytes to each. Errors are Marshal's.
func AppendFrame(b []byte, m Message) ([]byte, error) {
	start := len(b)
	b = append(b, 0, 0, 0, 0)
	b, err := appendMessage(b, m)
	if err != nil {
		return nil, err
	}
	binary.BigEndian.PutUint32(b[start:], uint32(len(b)-start-HeaderLen))
	return b, nil
}

// WriteFrame writes m as one frame, its header and payload in a single Write call (so that
// writers sharing w never interleave within a frame). It returns the bytes written.
func WriteFrame(w io.Writer, m Message) (int, error) {
	b, err := AppendFrame(make([]byte, 0, 64), m)
	if err != nil {
		return 0, err
	}
	return w.Write(b)
}

// ReadFrame reads one frame and decodes its payload. A length over max (MaxFrame if max is
// not in 1..MaxFrame) is refused with ErrFrameTooLarge before any of the body is read. It
// returns the bytes read, also on error. A stream that ends before a frame starts gives
// io.EOF; one that ends inside a frame gives io.ErrUnexpectedEOF. A frame read whole but
// not decoded gives an error wrapping ErrMalformed.
func ReadFrame(r io.Reader, max int) (Message, int, error) {
	if max <= 0 || max > MaxFrame {
		max = MaxFrame
	}
	var h [HeaderLen]byte
	n, err := io.ReadFull(r, h[:])
	if err != nil {
		return nil, n, err
	}
	size := binary.BigEndian.Uint32(h[:])
	if size > uint32(max) {
		return nil, n, fmt.Errorf("%w: %d bytes, the most is %d", ErrFrameTooLarge, size, max)
	}
	body := make([]byte, size)
	m, err := io.ReadFull(r, body)
	n += m
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	if err != nil {
		return nil, n, err
	}
	msg, err := Unmarshal(body)
	return msg, n, err
}
