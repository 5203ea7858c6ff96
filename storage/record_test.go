package storage

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A resume record that cannot be read is set aside and a new one begun; one held by another
// shoal is not touched.
func TestDamagedRecordSetAside(t *testing.T) {
	state := t.TempDir()
	db := filepath.Join(state, boltFile)
	if err := os.WriteFile(db, []byte(strings.Repeat("torn page ", 500)), 0o600); err != nil {
		t.Fatal(err)
	}
	st, err := Open(Options{Dir: t.TempDir(), StateDir: state})
	if err != nil {
		t.Fatalf("Open with a damaged record: %v", err)
	}
	defer st.Close()
	if !st.Damaged() || !st.Resumed() {
		t.Errorf("Damaged() = %v, Resumed() = %v, want both true", st.Damaged(), st.Resumed())
	}
	if _, err := os.Stat(db + ".damaged"); err != nil {
		t.Errorf("the damaged record was not kept aside: %v", err)
	}

	// The record is now in use by st: a second store must not set it aside.
	if _, err := Open(Options{Dir: t.TempDir(), StateDir: state}); err == nil || !strings.Contains(err.Error(), "another shoal") {
		t.Fatalf("second Open of a record in use: %v, want an error naming another shoal", err)
	}
	if _, err := os.Stat(db); err != nil {
		t.Errorf("the record in use was moved: %v", err)
	}
}
