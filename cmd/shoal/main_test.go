package main

import (
	"os"
	"testing"

	"go.uber.org/goleak"
)

// TestMain keeps every shoal these tests start (in process or as a child) off the public DHT:
// discovery is none unless a test asks for a mode with --discovery.
func TestMain(m *testing.M) {
	os.Setenv("SHOAL_DISCOVERY", "none")
	goleak.VerifyTestMain(m)
}
