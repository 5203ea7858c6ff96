package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/anacrolix/torrent/bencode"
	"github.com/anacrolix/torrent/metainfo"
	pp "github.com/anacrolix/torrent/peer_protocol"
)

// metaPeer is a BitTorrent peer written for tests that has only a torrent's metadata: it
// answers the handshake and ut_metadata requests (BEP 9, BEP 10) with the info bytes it was
// given, whatever they hold, and has no piece. Any info dictionary can be served this way, one
// the torrent library itself would refuse to seed included.
type metaPeer struct {
	info     []byte
	infoHash metainfo.Hash
	ln       net.Listener
	ctx      context.Context
	cancel   context.CancelFunc
	wg       sync.WaitGroup

	mu    sync.Mutex
	conns map[net.Conn]struct{}

	served atomic.Int64  // metadata pieces sent
	ended  chan struct{} // gets a value each time a connection that was served ends
}

// metaPeerExtID is the number the peer gives ut_metadata in its extended handshake.
const metaPeerExtID = 3

// startMetaPeer listens on ip (port 0) and serves info as the metadata of the torrent whose
// info-hash is its SHA-1.
func startMetaPeer(ip string, info []byte) (*metaPeer, error) {
	return startLyingMetaPeer(ip, info, metainfo.HashBytes(info))
}

// startLyingMetaPeer serves info as the metadata of the torrent ih, whatever info hashes to.
func startLyingMetaPeer(ip string, info []byte, ih metainfo.Hash) (*metaPeer, error) {
	ln, err := net.Listen("tcp4", net.JoinHostPort(ip, "0"))
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	p := &metaPeer{info: info, infoHash: ih, ln: ln, ctx: ctx, cancel: cancel,
		conns: map[net.Conn]struct{}{}, ended: make(chan struct{}, 64)}
	p.wg.Add(1)
	go p.accept()
	return p, nil
}

func (p *metaPeer) addr() netip.AddrPort { return p.ln.Addr().(*net.TCPAddr).AddrPort() }

// close stops the listener and every connection, and waits for them.
func (p *metaPeer) close() {
	p.cancel()
	p.ln.Close()
	p.mu.Lock()
	for c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}

func (p *metaPeer) accept() {
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
		p.mu.Unlock()
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			served := p.served.Load()
			_ = p.serve(c)
			c.Close()
			p.mu.Lock()
			delete(p.conns, c)
			p.mu.Unlock()
			if p.served.Load() > served {
				select {
				case p.ended <- struct{}{}:
				default:
				}
			}
		}()
	}
}

// serve answers one connection: the handshake, then metadata requests until it ends.
func (p *metaPeer) serve(c net.Conn) error {
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	var hs [68]byte
	if _, err := io.ReadFull(c, hs[:]); err != nil {
		return err
	}
	if string(hs[:20]) != pp.Protocol || metainfo.Hash(hs[28:48]) != p.infoHash {
		return errors.New("not a plaintext handshake for our torrent")
	}
	_ = c.SetDeadline(time.Time{})
	w := bufio.NewWriter(c)
	w.WriteString(pp.Protocol)
	ext := pp.NewPeerExtensionBytes(pp.ExtensionBitLtep)
	w.Write(ext[:])
	w.Write(p.infoHash[:])
	w.WriteString("-TM0001-metapeer0000")
	hello, err := bencode.Marshal(pp.ExtendedHandshakeMessage{
		M:            map[pp.ExtensionName]pp.ExtensionNumber{pp.ExtensionNameMetadata: metaPeerExtID},
		MetadataSize: len(p.info),
	})
	if err != nil {
		return err
	}
	writeMsg(w, pp.Message{Type: pp.Extended, ExtendedID: pp.HandshakeExtendedID, ExtendedPayload: hello})
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
		case metaPeerExtID:
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
			writeMsg(w, pp.Message{Type: pp.Extended, ExtendedID: theirs,
				ExtendedPayload: append(bytes.Clone(head), p.info[begin:end]...)})
			if err := w.Flush(); err != nil {
				return err
			}
			p.served.Add(1)
		}
	}
}

func writeMsg(w *bufio.Writer, m pp.Message) {
	b, err := m.MarshalBinary()
	if err != nil {
		panic(err) // our own messages always marshal
	}
	w.Write(b)
}
