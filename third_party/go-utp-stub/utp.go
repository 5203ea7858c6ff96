// Package utp stands in for github.com/anacrolix/go-utp, whose module zip the Go module
// proxy refuses to serve for the version anacrolix/torrent v1.62.0 pins. Every constructor
// fails, so shoal runs BitTorrent over TCP only (DisableUTP and NoDHT on every client).
// Delete this module and the replace in ../../go.mod once the proxy serves the real one.
package utp

import (
	"context"
	"errors"
	"log/slog"
	"net"
)

// FirewallCallback matches the real package's type.
type FirewallCallback = func(net.Addr) bool

// Option matches the real package's functional options.
type Option func(*options)

type options struct{ logger *slog.Logger }

// WithLogger is accepted and ignored.
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.logger = l } }

// Socket is the subset of the real socket API that anacrolix/torrent uses.
type Socket interface {
	net.PacketConn
	Accept() (net.Conn, error)
	Addr() net.Addr
	DialContext(ctx context.Context, network, addr string) (net.Conn, error)
	SetFirewallCallback(FirewallCallback)
}

// Default names this implementation.
const Default = "utp-stub"

// ErrDisabled is what every constructor returns.
var ErrDisabled = errors.New("uTP is not available in this build")

// NewSocket always fails with ErrDisabled.
func NewSocket(network, addr string, _ ...Option) (Socket, error) { return nil, ErrDisabled }

// NewSocketFromPacketConn always fails with ErrDisabled.
func NewSocketFromPacketConn(pc net.PacketConn, _ ...Option) (Socket, error) {
	return nil, ErrDisabled
}
