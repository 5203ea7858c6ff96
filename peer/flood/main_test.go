package flood_test

import (
	"log/slog"
	"testing"

	"github.com/shoalp2p/shoal/swarm"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, swarm.LibraryGoroutines()...)
}

// testLogger logs through t, so a failing test shows what the nodes said.
func testLogger(t testing.TB) *slog.Logger { return swarm.TestLogger(t, slog.LevelWarn) }
