// Package peer is a shoal node: one BitTorrent client (anacrolix/torrent, TCP) that seeds and
// leeches at once, the torrents it works on, and the events it reports. How peers are found is
// not its business: it dials the addresses it is given.
package peer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/anacrolix/torrent"
	"github.com/anacrolix/torrent/metainfo"
	tstorage "github.com/anacrolix/torrent/storage"
	"golang.org/x/time/rate"

	"github.com/shoalp2p/shoal/peer/meta"
	"github.com/shoalp2p/shoal/storage"
)

// Config is how a node runs.
type Config struct {
	// Listen is the BitTorrent TCP address, HOST:PORT. An empty host listens on every
	// interface; port 0 picks a free port.
	Listen string
	// DataDir holds the node's state: each torrent's piece-completion record for resume.
	DataDir string
	// DownloadRate and UploadRate cap payload bytes per second; 0 is unlimited.
	DownloadRate, UploadRate int64
	// PieceMemory caps, for each torrent, the memory for received pieces awaiting their hash
	// and the memory for complete pieces kept for peers, each (storage.DefaultBufferLimit and
	// storage.DefaultCacheLimit when 0). Many nodes in one process want less.
	PieceMemory int64
	// DisablePEX turns off peer exchange, so that every peer found was found by discovery.
	DisablePEX bool
	// InOrder leaves which pieces are fetched from whom to the library alone, without the
	// swarm policy of share.go (for comparison).
	InOrder bool
	// Discovery adapters find peers and announce this node's torrents (after a torrent's
	// data is ready; a torrent is announced again once it completes). The node owns them:
	// Close closes them. The torrent's own trackers are used only through an adapter.
	Discovery []Discovery
	// Logger receives the node's and the library's log; nil discards it.
	Logger *slog.Logger
}

// ErrPortInUse is wrapped by New when the listen port is taken.
var ErrPortInUse = errors.New("port already in use")

// Node is one BitTorrent client.
type Node struct {
	cfg  Config
	log  *slog.Logger
	cl   *torrent.Client
	host string

	mu       sync.Mutex
	torrents []*Torrent
	windows  seedWindows // request windows to seeds, set by the swarm policy (share.go)
}

// New starts a node listening on cfg.Listen. The node owns cfg.Discovery from here on,
// and closes the adapters itself if it cannot start.
func New(cfg Config) (n *Node, err error) {
	defer func() {
		if err != nil {
			for _, d := range cfg.Discovery {
				d.Close()
			}
		}
	}()
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.DataDir == "" {
		return nil, errors.New("no data dir")
	}
	host, port, err := SplitListen(cfg.Listen)
	if err != nil {
		return nil, err
	}
	c := torrent.NewDefaultClientConfig()
	c.ListenHost = func(string) string { return host }
	c.ListenPort = port
	c.NoDHT, c.DisableUTP = true, true // uTP is stubbed out (see third_party); the DHT runs apart
	c.NoDefaultPortForwarding = true
	c.DisableWebtorrent, c.DisableWebseeds = true, true
	c.DisablePEX = cfg.DisablePEX
	c.DisableTrackers = true // trackers are a Discovery adapter (peer/announce)
	c.Seed = true
	c.DataDir = cfg.DataDir
	// Every torrent's storage is opened by Run (storage.Open). Left without a default, the
	// library would open one of its own anyway, with a piece-completion database in DataDir
	// that the first shoal running holds locked: a second one waited a second for it and
	// warned "couldn't open piece completion db" on standard error.
	c.DefaultStorage = noDefaultStorage{}
	c.DialRateLimiter = rate.NewLimiter(rate.Inf, 0)
	c.Slogger = slog.New(quietDiskNoise(cfg.Logger.Handler()))
	c.Bep20 = "-SH0001-"
	c.ExtendedHandshakeClientVersion = "shoal 0.1"
	c.HTTPUserAgent = "shoal/0.1"
	var bound *torrent.NetworkDialer
	if ip := net.ParseIP(host); ip != nil {
		network := "tcp4"
		if ip.To4() != nil {
			c.DisableIPv6 = true
		} else {
			c.DisableIPv4 = true
			network = "tcp6"
		}
		if !ip.IsUnspecified() {
			// Dial peers and trackers from the address we listen on. Otherwise the kernel
			// picks the source (127.0.0.1 on loopback): trackers hand out an address nobody
			// listens on, and peers that ban by IP ban every node that shares it.
			d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: ip}, KeepAlive: -1}
			c.TrackerDialContext = d.DialContext
			c.DialForPeerConns = false
			bound = &torrent.NetworkDialer{Network: network, Dialer: d}
		}
	}
	if cfg.DownloadRate > 0 {
		c.DownloadRateLimiter = rate.NewLimiter(rate.Limit(cfg.DownloadRate), 0)
	}
	if cfg.UploadRate > 0 {
		c.UploadRateLimiter = rate.NewLimiter(rate.Limit(cfg.UploadRate), 0)
	}
	n = &Node{cfg: cfg, log: cfg.Logger, host: host}
	c.Callbacks.PeerConnAdded = append(c.Callbacks.PeerConnAdded, n.onPeerConn)
	c.Callbacks.ReceivedUsefulData = append(c.Callbacks.ReceivedUsefulData, n.onChunk)
	c.Callbacks.PeerConnReadExtensionMessage = append(c.Callbacks.PeerConnReadExtensionMessage, n.onExtensionMessage)
	cl, err := torrent.NewClient(c)
	if err != nil {
		if errors.Is(err, syscall.EADDRINUSE) {
			return nil, fmt.Errorf("listen on %s: %w (choose another with --listen)", cfg.Listen, ErrPortInUse)
		}
		if errors.Is(err, syscall.EADDRNOTAVAIL) {
			return nil, fmt.Errorf("listen on %s: no such address on this machine", cfg.Listen)
		}
		return nil, fmt.Errorf("starting BitTorrent client on %s: %w", cfg.Listen, err)
	}
	if bound != nil {
		cl.AddDialer(bound)
	}
	n.cl = cl
	return n, nil
}

// onPeerConn passes a new connection to its torrent's Run loop. The library calls it with its
// lock held, so it never blocks: past the buffer, connections go unreported.
func (n *Node) onPeerConn(pc *torrent.PeerConn) {
	found := PeerFound{Event: "peer", Addr: pc.RemoteAddr.String(), Source: sourceName(pc.Discovery), At: time.Now()}
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, t := range n.torrents {
		if t.t == pc.Torrent() {
			select {
			case t.conns <- found:
			default:
			}
		}
	}
}

// SplitListen parses a listen address HOST:PORT, where HOST may be empty (every interface)
// and PORT may be 0 (any free port).
func SplitListen(s string) (string, int, error) {
	if s == "" {
		return "", 0, nil
	}
	host, ps, err := net.SplitHostPort(s)
	if err != nil {
		return "", 0, fmt.Errorf("listen address %q: want HOST:PORT, like 127.0.0.1:6881 or :0", s)
	}
	port, err := strconv.ParseUint(ps, 10, 16)
	if err != nil {
		return "", 0, fmt.Errorf("listen address %q: port must be 0..65535", s)
	}
	if host != "" && net.ParseIP(host) == nil {
		return "", 0, fmt.Errorf("listen address %q: host must be an IP address", s)
	}
	return host, int(port), nil
}

// Addr is the address peers reach this node on: the listen IP (127.0.0.1 when listening on
// every interface) and the TCP port actually bound.
func (n *Node) Addr() netip.AddrPort {
	ip, _ := netip.ParseAddr(n.host)
	if !ip.IsValid() || ip.IsUnspecified() {
		ip = netip.AddrFrom4([4]byte{127, 0, 0, 1})
	}
	return netip.AddrPortFrom(ip, uint16(n.cl.LocalPort()))
}

// ListenAddr is where the node listens, as HOST:PORT with the port actually bound; an empty
// host (every interface) shows as 0.0.0.0.
func (n *Node) ListenAddr() string {
	h := n.host
	if h == "" {
		h = "0.0.0.0"
	}
	return net.JoinHostPort(h, strconv.Itoa(n.cl.LocalPort()))
}

// AddOptions says where a torrent's data lives and how it is fetched.
type AddOptions struct {
	// Dir is the folder the content goes in (or is found in, when seeding).
	Dir string
	// Name, when set, is the content's name on disk instead of the torrent's own.
	Name string
	// Seed says the content is already whole on disk: it is verified, never downloaded.
	Seed bool
	// Hashed, with Seed, says the torrent was just made from the content (meta.Create), so
	// it is not hashed a second time before seeding.
	Hashed bool
	// Peers are dialled directly, again and again, whatever else finds peers.
	Peers []netip.AddrPort
}

// Add starts working on a torrent. Nothing is read or written until Run.
func (n *Node) Add(src *meta.Source, opts AddOptions) (*Torrent, error) {
	stateDir := ""
	if !opts.Seed {
		stateDir = filepath.Join(n.cfg.DataDir, "resume", src.InfoHash.HexString())
	}
	// A verified piece that cannot be written to its file ends the run as a block that cannot
	// be written does (the library only logs it, and counts the piece complete). The Torrent is
	// made below, before anything is written.
	var owner atomic.Pointer[Torrent]
	storeOpts := storage.Options{
		Dir: opts.Dir, Name: opts.Name, StateDir: stateDir, Complete: opts.Seed, Hashed: opts.Seed && opts.Hashed, Logger: n.log,
		BufferLimit: n.cfg.PieceMemory, CacheLimit: n.cfg.PieceMemory,
		WriteFailed: func(err error) {
			if t := owner.Load(); t != nil {
				t.onWriteError(err)
			}
		},
	}
	// With the metadata in hand (a .torrent), the storage opens now, so that a folder that
	// cannot be written is reported at once. Without it (a magnet link), it opens only once the
	// metadata from peers has passed meta.CheckInfo: until then, nothing is written, not even
	// the download folder or the resume record.
	var store *storage.Store
	if src.Info != nil {
		var err error
		if store, err = storage.Open(storeOpts); err != nil {
			return nil, err
		}
	}
	spec := torrent.AddTorrentOpts{
		InfoHash:             src.InfoHash,
		DeferStorageOpen:     true,
		DisallowDataDownload: opts.Seed,
		// A seed is hashed whole by Run; the library's own initial check would hash it again.
		// (A leecher needs that check: without it, pieces of unknown state are never fetched.)
		DisableInitialPieceCheck: opts.Seed,
	}
	if src.MetaInfo != nil {
		spec.InfoBytes = src.MetaInfo.InfoBytes
	}
	t, isNew := n.cl.AddTorrentOpt(spec)
	if !isNew {
		if store != nil {
			store.Close()
		}
		return nil, fmt.Errorf("torrent %s is already added", src.InfoHash.HexString())
	}
	if src.Name != "" {
		t.SetDisplayName(src.Name)
	}
	var metadata *metadataCopy
	if src.Info == nil {
		metadata = newMetadataCopy(src.InfoHash)
	}
	tt := &Torrent{
		node: n, t: t, src: src, store: store, storeOpts: storeOpts, opts: opts, metadata: metadata,
		peers:     append(append([]netip.AddrPort(nil), opts.Peers...), src.Peers...),
		writeErrs: make(chan error, 1),
		conns:     make(chan PeerFound, 256),
		watch:     newHashWatch(),
	}
	t.SetOnWriteChunkError(tt.onWriteError)
	owner.Store(tt)
	n.mu.Lock()
	n.torrents = append(n.torrents, tt)
	n.mu.Unlock()
	return tt, nil
}

// Close stops the client, which finishes writing what it has, then closes every torrent's
// storage and resume record.
func (n *Node) Close() error {
	errs := n.cl.Close()
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, t := range n.torrents {
		if t.store == nil { // a magnet whose metadata never came
			continue
		}
		if err := t.store.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	n.torrents = nil
	for _, d := range n.cfg.Discovery {
		if err := d.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// SearchStats is what each discovery adapter has cost so far, by adapter name.
func (n *Node) SearchStats() map[string]SearchStats {
	if len(n.cfg.Discovery) == 0 {
		return nil
	}
	m := make(map[string]SearchStats, len(n.cfg.Discovery))
	for _, d := range n.cfg.Discovery {
		m[d.Name()] = d.Stats()
	}
	return m
}

// BannedIPs lists the peer addresses banned for sending data that failed its hash, sorted.
func (n *Node) BannedIPs() []string {
	var ips []netip.Addr
	for _, s := range n.cl.BadPeerIPs() {
		// The library may hold one IP twice, as IPv4 and as IPv4-mapped IPv6.
		if ip, err := netip.ParseAddr(s); err == nil && !slices.Contains(ips, ip.Unmap()) {
			ips = append(ips, ip.Unmap())
		}
	}
	slices.SortFunc(ips, netip.Addr.Compare)
	out := make([]string, len(ips))
	for i, ip := range ips {
		out[i] = ip.String()
	}
	return out
}

// noDefaultStorage is the client's default storage: none. Each torrent is added with its
// storage deferred and opened with its own (Torrent.prepare), so the library never opens this.
type noDefaultStorage struct{}

func (noDefaultStorage) OpenTorrent(context.Context, *metainfo.Info, metainfo.Hash) (tstorage.TorrentImpl, error) {
	return tstorage.TorrentImpl{}, errors.New("no storage given for this torrent")
}
