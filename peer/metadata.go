package peer

import (
	"sync"

	"github.com/anacrolix/torrent"
	"github.com/anacrolix/torrent/bencode"
	"github.com/anacrolix/torrent/metainfo"
	pp "github.com/anacrolix/torrent/peer_protocol"
)

// Metadata (BEP 9) travels in 16 KiB pieces; the torrent library takes at most 16 MiB of it.
const (
	metadataPiece   = 16 << 10
	maxMetadataSize = 16 << 20
)

// metadataCopy assembles, beside the torrent library, the metadata a magnet's torrent receives
// from peers, so that Run can check it too. The library drops an info dictionary it finds
// malformed (a piece length of 0, a hash count at odds with the size) without a word, and asks
// for it again: the download would wait forever on a torrent that cannot be. With its own copy,
// Run refuses it in one line instead.
type metadataCopy struct {
	ih   metainfo.Hash
	out  chan []byte // the whole info dictionary, once, when it hashes to ih
	mu   sync.Mutex
	size int
	buf  []byte
	have []bool
	left int
	done bool
}

func newMetadataCopy(ih metainfo.Hash) *metadataCopy {
	return &metadataCopy{ih: ih, out: make(chan []byte, 1)}
}

// add takes one ut_metadata message as a peer sent it. It is called with the library's lock
// held, so it only copies; a wrong piece is caught by the hash of the whole, which starts the
// copy again.
func (m *metadataCopy) add(payload []byte) {
	var msg pp.ExtendedMetadataRequestMsg
	if err := bencode.Unmarshal(payload, &msg); err != nil {
		if _, ok := err.(bencode.ErrUnusedTrailingBytes); !ok {
			return
		}
	}
	if msg.Type != pp.DataMetadataExtensionMsgType {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.done {
		return
	}
	if m.buf == nil {
		if msg.TotalSize <= 0 || msg.TotalSize > maxMetadataSize {
			return
		}
		m.size = msg.TotalSize
		m.buf = make([]byte, m.size)
		m.have = make([]bool, (m.size+metadataPiece-1)/metadataPiece)
		m.left = len(m.have)
	}
	if msg.TotalSize != m.size || msg.Piece < 0 || msg.Piece >= len(m.have) {
		return
	}
	n := min(metadataPiece, m.size-msg.Piece*metadataPiece)
	if len(payload) < n {
		return
	}
	copy(m.buf[msg.Piece*metadataPiece:], payload[len(payload)-n:])
	if !m.have[msg.Piece] {
		m.have[msg.Piece] = true
		m.left--
	}
	if m.left > 0 {
		return
	}
	if metainfo.HashBytes(m.buf) != m.ih {
		m.buf, m.have = nil, nil
		return
	}
	m.done = true
	m.out <- m.buf
	m.buf, m.have = nil, nil // Run holds it now, and lets it go once checked
}

// onExtensionMessage hands ut_metadata messages to the copy of the torrent they are for.
func (n *Node) onExtensionMessage(ev torrent.PeerConnReadExtensionMessageEvent) {
	if ev.ExtensionNumber == pp.HandshakeExtendedID || ev.PeerConn.LocalLtepProtocolMap == nil {
		return
	}
	name, _, err := ev.PeerConn.LocalLtepProtocolMap.LookupId(ev.ExtensionNumber)
	if err != nil || name != pp.ExtensionNameMetadata {
		return
	}
	var m *metadataCopy
	n.mu.Lock()
	for _, t := range n.torrents {
		if t.t == ev.PeerConn.Torrent() {
			m = t.metadata
		}
	}
	n.mu.Unlock()
	if m != nil {
		m.add(ev.Payload)
	}
}
