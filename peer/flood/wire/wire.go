// Package wire is the flood overlay's binary wire format: the messages neighbours exchange,
// their encoding, and the length-prefixed frames that carry them over a stream.
//
// It holds no protocol logic: what a node does with a message (answer, forward, drop) is
// peer/flood's business, and routing state is peer/flood/route's.
//
// A frame is a 4-byte big-endian payload length followed by the payload; a payload is one
// type byte followed by that type's body. Every integer is big-endian. An address is one
// family byte (4 or 6), the 4 or 16 bytes of the IP, and a 2-byte port. A list of addresses
// is a 1-byte count (at most MaxAddrs) followed by the addresses. Decoding is strict: the
// encoding of a message is unique, so every payload Unmarshal accepts is exactly what Marshal
// gives for the message it returns.
//
//	Hello  1  "shoal/flood" | version u8 (not 0) | node ID [16] | listen addr (family 0: none) | BitTorrent port u16
//	Ping   2  nonce u64
//	Pong   3  nonce u64 | addrs
//	Query  4  query ID [16] | ttl u8 | hops u8 | infohash [20] | walk u8 (0 or 1)
//	Hit    5  query ID [16] | infohash [20] | hops u8 | peers
//	Bye    6  reason length u8 | reason
//
// Functions here are safe for concurrent use; messages are plain values.
package wire

import (
	"errors"
	"fmt"
	"net/netip"
)

// Version is the overlay protocol version this package speaks, sent in Hello.
const Version = 1

// Protocol names the protocol at the start of every Hello body, so a connection from
// something that is not a flood node (a BitTorrent client, a port scanner) fails at once.
const Protocol = "shoal/flood"

// MaxFrame is the hard cap on one frame's payload, in bytes. No valid message comes near it:
// the largest (a Hit with MaxAddrs IPv6 peers) is under 700 bytes.
const MaxFrame = 16 << 10

// MaxAddrs is the most addresses one Pong or Hit carries.
const MaxAddrs = 32

// MaxReason is the longest Bye reason, in bytes.
const MaxReason = 255

// HeaderLen is the length of a frame's header: the payload length as a big-endian uint32.
const HeaderLen = 4

// Type is a message's type, its payload's first byte.
//
// The list is append-only: a type's number never changes and is never reused, so that
// nodes of different versions never misread each other. Add new types at the end.
type Type uint8

const (
	TypeHello Type = 1 // first frame each side sends
	TypePing  Type = 2
	TypePong  Type = 3
	TypeQuery Type = 4
	TypeHit   Type = 5
	TypeBye   Type = 6
)

// NumTypes is one more than the highest Type, so that [NumTypes]T can be indexed by any
// known Type (counters by message type).
const NumTypes = 7

var typeNames = [NumTypes]string{"", "hello", "ping", "pong", "query", "hit", "bye"}

// String is the type's lowercase name ("query"), or "type(N)" for an unknown type.
func (t Type) String() string {
	if t.Known() {
		return typeNames[t]
	}
	return fmt.Sprintf("type(%d)", uint8(t))
}

// Known reports whether t is a type this package decodes.
func (t Type) Known() bool { return t >= TypeHello && t < NumTypes }

// Message is one of Hello, Ping, Pong, Query, Hit, Bye. Unmarshal and ReadFrame return
// values (wire.Ping, not *wire.Ping); Marshal and WriteFrame take either.
type Message interface{ Type() Type }

// Hello is the first frame each side of a link sends: who it is and where to reach it.
type Hello struct {
	Version uint8    // protocol version; never 0
	NodeID  [16]byte // the node's random ID
	// Listen is the overlay address where the node accepts links; the zero AddrPort means
	// it accepts none. An unspecified IP (0.0.0.0, ::) is sent as is: the receiver
	// substitutes the IP it sees the link come from.
	Listen netip.AddrPort
	BTPort uint16 // the node's BitTorrent TCP port
}

// Ping asks a neighbour for a Pong with the same Nonce: a liveness check and a request for
// addresses.
type Ping struct {
	Nonce uint64
}

// Pong answers a Ping.
type Pong struct {
	Nonce uint64
	Addrs []netip.AddrPort // a few known overlay addresses (gossip), at most MaxAddrs
}

// Query searches the overlay for peers of a torrent.
type Query struct {
	ID       [16]byte // the query's random ID, for duplicate suppression and the reverse path
	TTL      uint8    // hops left
	Hops     uint8    // hops taken so far
	InfoHash [20]byte
	Walk     bool // a random-walk walker (forwarded to one neighbour) rather than a flood
}

// Hit answers a Query; it travels back along the query's reverse path to the origin.
type Hit struct {
	ID       [16]byte // the query's ID
	InfoHash [20]byte
	Hops     uint8            // hops from the origin to the holder
	Peers    []netip.AddrPort // BitTorrent addresses of the holder, at most MaxAddrs
}

// Bye tells a neighbour the link is closing, and why.
type Bye struct {
	Reason string // at most MaxReason bytes
}

func (Hello) Type() Type { return TypeHello }
func (Ping) Type() Type  { return TypePing }
func (Pong) Type() Type  { return TypePong }
func (Query) Type() Type { return TypeQuery }
func (Hit) Type() Type   { return TypeHit }
func (Bye) Type() Type   { return TypeBye }

var (
	// ErrFrameTooLarge is returned for a frame, or a message to be framed, whose payload
	// is over the cap.
	ErrFrameTooLarge = errors.New("wire: frame too large")
	// ErrMalformed is wrapped by every error for bytes that are not a valid payload, and for
	// a message that cannot be encoded (too many addresses, a Bye reason too long, ...).
	ErrMalformed = errors.New("wire: malformed message")
)
