package wire

import (
	"encoding/binary"
	"fmt"
	"net/netip"
)

// Marshal encodes m as a payload: its type byte and its body. It fails, wrapping
// ErrMalformed, for a message the format cannot carry (more than MaxAddrs addresses, an
// invalid or zoned address, a Bye reason over MaxReason bytes, a Hello with Version 0), and
// with ErrFrameTooLarge if the payload would exceed MaxFrame.
func Marshal(m Message) ([]byte, error) {
	return appendMessage(make([]byte, 0, 64), m)
}

// appendMessage appends m's payload to b.
func appendMessage(b []byte, m Message) ([]byte, error) {
	v, ok := value(m)
	if !ok {
		return nil, fmt.Errorf("%w: cannot encode %T", ErrMalformed, m)
	}
	m = v
	start := len(b)
	var err error
	switch m := m.(type) {
	case Hello:
		b, err = appendHello(b, m)
	case Ping:
		b = appendPing(b, m)
	case Pong:
		b, err = appendPong(b, m)
	case Query:
		b = appendQuery(b, m)
	case Hit:
		b, err = appendHit(b, m)
	case Bye:
		b, err = appendBye(b, m)
	}
	if err != nil {
		return nil, err
	}
	if n := len(b) - start; n > MaxFrame {
		return nil, fmt.Errorf("%w: %d-byte %v", ErrFrameTooLarge, n, m.Type())
	}
	return b, nil
}

// value is m as a value (Ping for *Ping); false for nil, a nil pointer, or a type not
// of this package.
func value(m Message) (Message, bool) {
	switch p := m.(type) {
	case Hello, Ping, Pong, Query, Hit, Bye:
		return m, true
	case *Hello:
		return deref(p)
	case *Ping:
		return deref(p)
	case *Pong:
		return deref(p)
	case *Query:
		return deref(p)
	case *Hit:
		return deref(p)
	case *Bye:
		return deref(p)
	}
	return nil, false
}

func deref[M Message](p *M) (Message, bool) {
	if p == nil {
		return nil, false
	}
	return *p, true
}

func appendHello(b []byte, m Hello) ([]byte, error) {
	if m.Version == 0 {
		return nil, fmt.Errorf("%w: hello: version 0", ErrMalformed)
	}
	b = append(b, byte(TypeHello))
	b = append(b, Protocol...)
	b = append(b, m.Version)
	b = append(b, m.NodeID[:]...)
	if m.Listen == (netip.AddrPort{}) {
		b = append(b, 0)
	} else {
		var err error
		if b, err = appendAddr(b, m.Listen); err != nil {
			return nil, fmt.Errorf("hello: listen: %w", err)
		}
	}
	return binary.BigEndian.AppendUint16(b, m.BTPort), nil
}

func appendPing(b []byte, m Ping) []byte {
	b = append(b, byte(TypePing))
	return binary.BigEndian.AppendUint64(b, m.Nonce)
}

func appendPong(b []byte, m Pong) ([]byte, error) {
	b = append(b, byte(TypePong))
	b = binary.BigEndian.AppendUint64(b, m.Nonce)
	b, err := appendAddrs(b, m.Addrs)
	if err != nil {
		return nil, fmt.Errorf("pong: %w", err)
	}
	return b, nil
}

func appendQuery(b []byte, m Query) []byte {
	b = append(b, byte(TypeQuery))
	b = append(b, m.ID[:]...)
	b = append(b, m.TTL, m.Hops)
	b = append(b, m.InfoHash[:]...)
	if m.Walk {
		return append(b, 1)
	}
	return append(b, 0)
}

func appendHit(b []byte, m Hit) ([]byte, error) {
	b = append(b, byte(TypeHit))
	b = append(b, m.ID[:]...)
	b = append(b, m.InfoHash[:]...)
	b = append(b, m.Hops)
	b, err := appendAddrs(b, m.Peers)
	if err != nil {
		return nil, fmt.Errorf("hit: %w", err)
	}
	return b, nil
}

func appendBye(b []byte, m Bye) ([]byte, error) {
	if len(m.Reason) > MaxReason {
		return nil, fmt.Errorf("%w: bye: %d-byte reason, the most is %d", ErrMalformed, len(m.Reason), MaxReason)
	}
	b = append(b, byte(TypeBye), byte(len(m.Reason)))
	return append(b, m.Reason...), nil
}

func appendAddrs(b []byte, as []netip.AddrPort) ([]byte, error) {
	if len(as) > MaxAddrs {
		return nil, fmt.Errorf("%w: %d addresses, the most is %d", ErrMalformed, len(as), MaxAddrs)
	}
	b = append(b, byte(len(as)))
	for _, a := range as {
		var err error
		if b, err = appendAddr(b, a); err != nil {
			return nil, err
		}
	}
	return b, nil
}

func appendAddr(b []byte, a netip.AddrPort) ([]byte, error) {
	ip := a.Addr()
	switch {
	case !ip.IsValid():
		return nil, fmt.Errorf("%w: invalid address %v", ErrMalformed, a)
	case ip.Zone() != "":
		return nil, fmt.Errorf("%w: zoned address %v", ErrMalformed, a)
	case ip.Is4():
		b = append(b, 4)
		ip4 := ip.As4()
		b = append(b, ip4[:]...)
	default:
		b = append(b, 6)
		ip16 := ip.As16()
		b = append(b, ip16[:]...)
	}
	return binary.BigEndian.AppendUint16(b, a.Port()), nil
}

// Unmarshal decodes a payload. It is strict: an empty payload, an unknown type, a short body,
// trailing bytes, more than MaxAddrs addresses, an address family other than 4 or 6, a Walk
// byte other than 0 or 1, a Hello without the Protocol name or with Version 0 all give an
// error wrapping ErrMalformed. It returns a value (Ping, not *Ping) and never panics; the
// message does not alias b.
func Unmarshal(b []byte) (Message, error) {
	if len(b) == 0 {
		return nil, fmt.Errorf("%w: empty payload", ErrMalformed)
	}
	t := Type(b[0])
	d := decoder{b: b[1:]}
	var m Message
	switch t {
	case TypeHello:
		m = d.hello()
	case TypePing:
		m = Ping{Nonce: d.u64()}
	case TypePong:
		m = Pong{Nonce: d.u64(), Addrs: d.addrs()}
	case TypeQuery:
		m = d.query()
	case TypeHit:
		m = Hit{ID: d.id(), InfoHash: d.infoHash(), Hops: d.u8(), Peers: d.addrs()}
	case TypeBye:
		m = Bye{Reason: string(d.bytes(int(d.u8())))}
	default:
		return nil, fmt.Errorf("%w: unknown type %d", ErrMalformed, uint8(t))
	}
	if d.err == nil && len(d.b) > 0 {
		d.fail("%d trailing bytes", len(d.b))
	}
	if d.err != nil {
		return nil, fmt.Errorf("%w: %v: %s", ErrMalformed, t, d.err)
	}
	return m, nil
}

// decoder reads a body front to back. The first failure sticks: later reads return zero
// values, so a message is decoded in one expression and checked once.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) fail(format string, args ...any) {
	if d.err == nil {
		d.err = fmt.Errorf(format, args...)
	}
	d.b = nil
}

// bytes consumes the next n bytes; nil if fewer are left.
func (d *decoder) bytes(n int) []byte {
	if d.err != nil {
		return nil
	}
	if len(d.b) < n {
		d.fail("short body: %d bytes left, %d wanted", len(d.b), n)
		return nil
	}
	p := d.b[:n:n]
	d.b = d.b[n:]
	return p
}

func (d *decoder) u8() uint8 {
	if p := d.bytes(1); p != nil {
		return p[0]
	}
	return 0
}

func (d *decoder) u16() uint16 {
	if p := d.bytes(2); p != nil {
		return binary.BigEndian.Uint16(p)
	}
	return 0
}

func (d *decoder) u64() uint64 {
	if p := d.bytes(8); p != nil {
		return binary.BigEndian.Uint64(p)
	}
	return 0
}

func (d *decoder) id() (id [16]byte) {
	copy(id[:], d.bytes(16))
	return id
}

func (d *decoder) infoHash() (ih [20]byte) {
	copy(ih[:], d.bytes(20))
	return ih
}

func (d *decoder) hello() Hello {
	if p := d.bytes(len(Protocol)); p != nil && string(p) != Protocol {
		d.fail("not %q", Protocol)
	}
	m := Hello{Version: d.u8(), NodeID: d.id()}
	if m.Version == 0 && d.err == nil {
		d.fail("version 0")
	}
	if len(d.b) > 0 && d.b[0] == 0 {
		d.b = d.b[1:] // no listen address
	} else {
		m.Listen = d.addr()
	}
	m.BTPort = d.u16()
	return m
}

func (d *decoder) query() Query {
	m := Query{ID: d.id(), TTL: d.u8(), Hops: d.u8(), InfoHash: d.infoHash()}
	switch walk := d.u8(); walk {
	case 0:
	case 1:
		m.Walk = true
	default:
		d.fail("walk byte %d", walk)
	}
	return m
}

// addrs decodes a list of addresses; nil for an empty list.
func (d *decoder) addrs() []netip.AddrPort {
	n := int(d.u8())
	if n > MaxAddrs {
		d.fail("%d addresses, the most is %d", n, MaxAddrs)
	}
	if n == 0 || d.err != nil {
		return nil
	}
	as := make([]netip.AddrPort, 0, n)
	for range n {
		as = append(as, d.addr())
	}
	if d.err != nil {
		return nil
	}
	return as
}

func (d *decoder) addr() netip.AddrPort {
	var ip netip.Addr
	switch fam := d.u8(); fam {
	case 4:
		if p := d.bytes(4); p != nil {
			ip = netip.AddrFrom4([4]byte(p))
		}
	case 6:
		if p := d.bytes(16); p != nil {
			ip = netip.AddrFrom16([16]byte(p))
		}
	default:
		if d.err == nil {
			d.fail("address family %d", fam)
		}
	}
	port := d.u16()
	if d.err != nil {
		return netip.AddrPort{}
	}
	return netip.AddrPortFrom(ip, port)
}
