package main

import (
	"strings"
	"testing"
)

// shoal swarm --upload-rate: the summary gives the seeders' upload as a multiple of the
// content and the bound, the content over the rate; --in-order is accepted; the text summary
// says both.
func TestSwarmBound(t *testing.T) {
	code, events, stdout, stderr := swarmRun(t, "swarm", "--nodes", "4", "--size", "2MiB", "--mode", "tracker",
		"--upload-rate", "1MiB", "--in-order", "--json")
	if code != 0 {
		t.Fatalf("exit %d\nstdout: %s\nstderr: %s", code, stdout, stderr)
	}
	_, last := byKind(events)
	sum := last["summary"]
	if sum["bound_from"] != "upload-rate" || sum["bound_rate"] != float64(1<<20) || sum["bound_seconds"] != float64(2) {
		t.Fatalf("bound: %v", sum)
	}
	if m := sum["seeder_upload_multiple"].(float64); m != sum["uploaded_by_seeders"].(float64)/float64(2<<20) || m < 1 {
		t.Fatalf("seeder_upload_multiple %v, uploaded_by_seeders %v", m, sum["uploaded_by_seeders"])
	}
	if r := sum["bound_ratio"].(float64); r != sum["seconds"].(float64)/2 {
		t.Fatalf("bound_ratio %v, seconds %v", r, sum["seconds"])
	}

	code, _, stdout, stderr = swarmRun(t, "swarm", "--nodes", "3", "--size", "1MiB", "--mode", "tracker", "--upload-rate", "1MiB")
	if code != 0 {
		t.Fatalf("exit %d\nstdout: %s\nstderr: %s", code, stdout, stderr)
	}
	for _, want := range []string{"x the content (each leecher serving the others keeps this near 1)",
		"bound       1.00 s to send the content once at --upload-rate 1.0 MiB/s; took "} {
		if !strings.Contains(stdout, want) {
			t.Errorf("stdout lacks %q:\n%s", want, stdout)
		}
	}
}
