// Package badpeer is a hostile BitTorrent peer for tests. It speaks just enough of the wire
// protocol (BEP 3, plaintext) to be dialled by a client. Started with Start, it claims to have
// every piece, and then either answers every request with wrong bytes or sends a message no
// client should accept. Started with StartMetadata, it has no piece, only a torrent's
// metadata: it advertises ut_metadata (BEP 9, BEP 10) and serves whatever info bytes it was
// given, info dictionaries the client should refuse included.
package badpeer

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/anacrolix/torrent/bencode"
	"github.com/anacrolix/torrent/metainfo"
	pp "github.com/anacrolix/torrent/peer_protocol"
)

// Mode is how the peer misbehaves.
type Mode int

const (
	// Corrupt answers every block request with random bytes of the right length.
	Corrupt Mode = iota
	// Oversized sends an extended message whose length prefix says 1 GiB, then waits.
	Oversized
	// UnknownID sends a message of a type that does not exist (0xee) with junk in it.
	UnknownID
	// Truncated sends a "have" message two bytes short.
	Truncated
	// metadata has no piece and serves its info bytes to ut_metadata requests (StartMetadata).
	metadata
)

func (m Mode) String() string {
	switch m {
	case Corrupt:
		return "corrupt"
	case Oversized:
		return "oversized"
	case UnknownID:
		return "unknown-id"
	case Truncated:
		return "truncated"
	case metadata:
		return "metadata"
	}
	return fmt.Sprintf("Mode(%d)", int(m))
}

// OversizedLength is the length prefix the Oversized peer sends.
const OversizedLength = 1 << 30

// MetadataExtID is the number the metadata peer gives ut_metadata in its extended handshake.
const MetadataExtID = 3

// Peer is a listening hostile peer for one torrent.
type Peer struct {
	mode      Mode
	infoHash  metainfo.Hash
	info      []byte // the metadata served in the metadata mode
	id        [20]byte
	numPieces int
	ln        net.Listener
	ctx       context.Context
	cancel    context.CancelFunc
	wg        sync.WaitGroup

	mu    sync.Mutex
	conns map[net.Conn]struct{}

	accepted   atomic.Int64  // TCP connections accepted
	handshakes atomic.Int64  // BitTorrent handshakes completed
	served     atomic.Int64  // blocks of wrong data, or pieces of metadata, sent
	dropped    atomic.Int64  // connections the other side closed after the handshake
	ended      chan struct{} // gets a value each time a connection that was served ends
}

// Start listens on ip (port 0) as a peer of the torrent with this infohash and number of
// pieces. Close stops it.
func Start(ip string, infoHash metainfo.Hash, numPieces int, mode Mode) (*Peer, error) {
	if mode == metadata {
		return nil, errors.New("badpeer: the metadata peer is started with StartMetadata")
	}
	return start(ip, infoHash, numPieces, mode, nil)
}

// StartMetadata listens on ip (port 0) as a peer of the torrent with this infohash that has
// no piece, only metadata: it advertises ut_metadata and answers every metadata request with
// the matching 16 KiB piece of info, whatever info holds and whatever it hashes to (pass
// metainfo.HashBytes(info) for a peer that serves the torrent, another hash for one that
// lies). Served counts the metadata pieces sent. Close stops it.
func StartMetadata(ip string, infoHash metainfo.Hash, info []byte) (*Peer, error) {
	return start(ip, infoHash, 0, metadata, info)
}

func start(ip string, infoHash metainfo.Hash, numPieces int, mode Mode, info []byte) (*Peer, error) {
	ln, err := net.Listen("tcp4", net.JoinHostPort(ip, "0"))
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	p := &Peer{mode: mode, infoHash: infoHash, info: info, numPieces: numPieces, ln: ln, ctx: ctx,
		cancel: cancel, conns: map[net.Conn]struct{}{}, ended: make(chan struct{}, 64)}
	copy(p.id[:], "-BAD001-")
	for i := 8; i < len(p.id); i++ {
		p.id[i] = 'a' + byte(rand.IntN(26))
	}
	p.wg.Add(1)
	go p.accept()
	return p, nil
}

// Addr is where the peer listens.
func (p *Peer) Addr() netip.AddrPort { return p.ln.Addr().(*net.TCPAddr).AddrPort() }

// Accepted counts TCP connections accepted (a client that prefers encryption dials twice for
// one plaintext session).
func (p *Peer) Accepted() int64 { return p.accepted.Load() }

// Handshakes counts BitTorrent handshakes completed, accepted or dialled.
func (p *Peer) Handshakes() int64 { return p.handshakes.Load() }

// Served counts blocks of wrong data sent, or for the metadata peer pieces of metadata sent;
// each is counted before it is flushed to the connection, so a client that got it sees it counted.
func (p *Peer) Served() int64 { return p.served.Load() }

// Ended gets a value each time a connection on which the peer served something (Served went
// up meanwhile) ends, whoever ended it. Values are not queued past 64 unread.
func (p *Peer) Ended() <-chan struct{} { return p.ended }

// Dropped counts connections the other side closed after the handshake.
func (p *Peer) Dropped() int64 { return p.dropped.Load() }

// Close stops listening, closes every connection and waits for them to end.
func (p *Peer) Close() error {
	p.cancel()
	err := p.ln.Close()
	p.mu.Lock()
	for c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
	return err
}

func (p *Peer) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		if p.ctx.Err() != nil {
			p.mu.Unlock()
			c.Close()
			return
		}
		p.conns[c] = struct{}{}
		p.wg.Add(1)
		p.mu.Unlock()
		p.accepted.Add(1)
		go func() {
			defer p.wg.Done()
			defer p.forget(c)
			if err := p.handshake(c); err != nil {
				return
			}
			p.handshakes.Add(1)
			p.misbehave(c)
		}()
	}
}

func (p *Peer) forget(c net.Conn) {
	p.mu.Lock()
	delete(p.conns, c)
	p.mu.Unlock()
	c.Close()
}

// misbehave serves a connection after the handshake, counts it dropped if the other side
// closes it, and says on ended when it ends after something was served.
func (p *Peer) misbehave(c net.Conn) {
	served := p.served.Load()
	err := p.serve(c)
	if p.ctx.Err() == nil && (errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) || isReset(err)) {
		p.dropped.Add(1)
	}
	if p.served.Load() > served {
		select {
		case p.ended <- struct{}{}:
		default:
		}
	}
}

// ErrRefused is returned by Dial when the client closes the connection instead of answering
// the handshake.
var ErrRefused = errors.New("the client closed the connection without a handshake")

// Dial connects to a client from the peer's own IP and sends a plaintext handshake for the
// torrent. When the client answers it, the peer goes on misbehaving on the connection (in
// the background, until Close) and Dial returns nil.
func (p *Peer) Dial(addr netip.AddrPort) error {
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: p.Addr().Addr().AsSlice()}, Timeout: 10 * time.Second}
	c, err := d.DialContext(p.ctx, "tcp4", addr.String())
	if err != nil {
		return err
	}
	p.mu.Lock()
	if p.ctx.Err() != nil {
		p.mu.Unlock()
		c.Close()
		return net.ErrClosed
	}
	p.conns[c] = struct{}{}
	p.mu.Unlock()
	if err := p.initiate(c); err != nil {
		p.forget(c)
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || isReset(err) {
			return fmt.Errorf("%w: %v", ErrRefused, err)
		}
		return err
	}
	p.handshakes.Add(1)
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		defer p.forget(c)
		p.misbehave(c)
	}()
	return nil
}

// initiate sends the handshake and reads the answer.
func (p *Peer) initiate(c net.Conn) error {
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	defer func() { _ = c.SetDeadline(time.Time{}) }()
	if _, err := c.Write(p.handshakeBytes()); err != nil {
		return err
	}
	var b [68]byte
	if _, err := io.ReadFull(c, b[:]); err != nil {
		return err
	}
	if string(b[:20]) != pp.Protocol || metainfo.Hash(b[28:48]) != p.infoHash {
		return errors.New("not a handshake for our torrent")
	}
	return nil
}

func (p *Peer) handshakeBytes() []byte {
	out := make([]byte, 0, 68)
	out = append(out, pp.Protocol...)
	if p.mode == metadata {
		ext := pp.NewPeerExtensionBytes(pp.ExtensionBitLtep) // BEP 10, for ut_metadata
		out = append(out, ext[:]...)
	} else {
		out = append(out, make([]byte, 8)...) // no extensions
	}
	out = append(out, p.infoHash[:]...)
	return append(out, p.id[:]...)
}

func isReset(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && !op.Timeout()
}

// handshake answers a plaintext BitTorrent handshake for our torrent; anything else (an
// encrypted handshake, another torrent) is refused by closing the connection.
func (p *Peer) handshake(c net.Conn) error {
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	defer func() { _ = c.SetDeadline(time.Time{}) }()
	var b [68]byte
	if _, err := io.ReadFull(c, b[:20]); err != nil {
		return err
	}
	if string(b[:20]) != pp.Protocol {
		return errors.New("not a plaintext handshake")
	}
	if _, err := io.ReadFull(c, b[20:]); err != nil {
		return err
	}
	if metainfo.Hash(b[28:48]) != p.infoHash {
		return errors.New("another torrent")
	}
	_, err := c.Write(p.handshakeBytes())
	return err
}

// serve misbehaves on an established connection until it ends.
func (p *Peer) serve(c net.Conn) error {
	if p.mode == metadata {
		return p.serveMetadata(c)
	}
	w := bufio.NewWriter(c)
	have := make([]bool, p.numPieces)
	for i := range have {
		have[i] = true
	}
	switch p.mode {
	case Corrupt:
		write(w, pp.Message{Type: pp.Bitfield, Bitfield: have})
		write(w, pp.Message{Type: pp.Unchoke})
	case Oversized:
		var h [5]byte
		binary.BigEndian.PutUint32(h[:4], OversizedLength)
		h[4] = byte(pp.Extended)
		w.Write(h[:])
		w.Write([]byte{0, 'd', 'e'}) // a start, and then nothing
	case UnknownID:
		junk := make([]byte, 64)
		for i := range junk {
			junk[i] = byte(rand.Uint32())
		}
		var h [5]byte
		binary.BigEndian.PutUint32(h[:4], uint32(1+len(junk)))
		h[4] = 0xee
		w.Write(h[:])
		w.Write(junk)
	case Truncated:
		w.Write([]byte{0, 0, 0, 3, byte(pp.Have), 0, 1})
	}
	if err := w.Flush(); err != nil {
		return err
	}
	d := pp.Decoder{R: bufio.NewReader(c), MaxLength: 1 << 20}
	for {
		var m pp.Message
		if err := d.Decode(&m); err != nil {
			return err
		}
		if p.mode != Corrupt || m.Keepalive || m.Type != pp.Request {
			continue
		}
		if m.Length > 1<<17 {
			continue
		}
		data := make([]byte, m.Length)
		for i := range data {
			data[i] = byte(rand.Uint32())
		}
		write(w, pp.Message{Type: pp.Piece, Index: m.Index, Begin: m.Begin, Piece: data})
		p.served.Add(1) // before it can reach the other side: whoever got it sees the count
		if err := w.Flush(); err != nil {
			return err
		}
	}
}

func write(w *bufio.Writer, m pp.Message) {
	b, err := m.MarshalBinary()
	if err != nil {
		panic(err) // our own messages always marshal
	}
	w.Write(b)
}

// serveMetadata sends the extended handshake, then answers metadata requests until the
// connection ends.
func (p *Peer) serveMetadata(c net.Conn) error {
	w := bufio.NewWriter(c)
	hello, err := bencode.Marshal(pp.ExtendedHandshakeMessage{
		M:            map[pp.ExtensionName]pp.ExtensionNumber{pp.ExtensionNameMetadata: MetadataExtID},
		MetadataSize: len(p.info),
	})
	if err != nil {
		return err
	}
	write(w, pp.Message{Type: pp.Extended, ExtendedID: pp.HandshakeExtendedID, ExtendedPayload: hello})
	if err := w.Flush(); err != nil {
		return err
	}
	var theirs pp.ExtensionNumber
	d := pp.Decoder{R: bufio.NewReader(c), MaxLength: 1 << 20}
	for {
		var m pp.Message
		if err := d.Decode(&m); err != nil {
			return err
		}
		if m.Keepalive || m.Type != pp.Extended {
			continue
		}
		switch m.ExtendedID {
		case pp.HandshakeExtendedID:
			var h pp.ExtendedHandshakeMessage
			if err := bencode.Unmarshal(m.ExtendedPayload, &h); err != nil {
				return err
			}
			theirs = h.M[pp.ExtensionNameMetadata]
		case MetadataExtID:
			var req pp.ExtendedMetadataRequestMsg
			if err := bencode.Unmarshal(m.ExtendedPayload, &req); err != nil || theirs == 0 {
				return errors.New("bad metadata request")
			}
			begin := req.Piece * (16 << 10)
			if req.Type != pp.RequestMetadataExtensionMsgType || begin < 0 || begin >= len(p.info) {
				continue
			}
			end := min(begin+16<<10, len(p.info))
			head := bencode.MustMarshal(pp.ExtendedMetadataRequestMsg{Piece: req.Piece, TotalSize: len(p.info), Type: pp.DataMetadataExtensionMsgType})
			write(w, pp.Message{Type: pp.Extended, ExtendedID: theirs,
				ExtendedPayload: append(bytes.Clone(head), p.info[begin:end]...)})
			p.served.Add(1) // before it can reach the other side (see above)
			if err := w.Flush(); err != nil {
				return err
			}
		}
	}
}
