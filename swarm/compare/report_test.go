package compare_test

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/shoalp2p/shoal/swarm/compare"
)

// handRows are rows made by hand, shaped like a run of every mode at two sizes: enough to test
// the renderers without running a network.
func handRows() []compare.Row {
	var rows []compare.Row
	for _, n := range []int{100, 1000} {
		holders := max(1, n/100)
		add := func(mode string, ttl int, msgs, success float64) {
			e := compare.Expect(mode, n, ttl, 4, 16, holders)
			deg := 4
			if mode == "dht" {
				deg = 0
			}
			rows = append(rows, compare.Row{
				Mode: mode, Nodes: n, TTL: ttl, Degree: deg, Replication: 0.01, Holders: holders,
				Lookups: 200, SuccessRate: success, MessagesPerLookup: msgs, MessagesPerLookupP95: msgs * 1.3,
				NodesReached: msgs / 2, HopsToFirstHit: e.Hops, LatencyMsP50: 1.25, LatencyMsP95: 4.5,
				BytesPerLookup:   msgs * 93.5,
				ExpectedMessages: e.Messages, ExpectedHops: e.Hops, ExpectedSuccess: e.Success,
			})
		}
		add("dht", 0, 20+float64(n)/100, 1)
		for _, ttl := range []int{3, 5, 7} {
			e := compare.Expect("flood", n, ttl, 4, 16, holders)
			add("flood", ttl, e.Messages*0.9, e.Success)
		}
		add("walk", 7, 100, 0.6)
	}
	return rows
}

// JSON: one array, every row an object with exactly Row's keys, values as given.
func TestWriteJSON(t *testing.T) {
	rows := handRows()
	var buf bytes.Buffer
	if err := compare.WriteJSON(&buf, rows); err != nil {
		t.Fatal(err)
	}
	var got []map[string]any
	if err := json.Unmarshal(buf.Bytes(), &got); err != nil {
		t.Fatalf("not a JSON array: %v\n%s", err, buf.String())
	}
	if len(got) != len(rows) {
		t.Fatalf("%d objects, want %d", len(got), len(rows))
	}
	want := []string{"mode", "nodes", "ttl", "lookups", "success_rate", "messages_per_lookup",
		"messages_per_lookup_p95", "nodes_reached", "hops_to_first_hit", "latency_ms_p50",
		"latency_ms_p95", "bytes_per_lookup", "expected_messages", "expected_hops", "expected_success",
		"sim", "degree", "replication", "holders"}
	cols := compare.Columns()
	for i, o := range got {
		for _, k := range want {
			if _, ok := o[k]; !ok {
				t.Errorf("row %d has no %q: %v", i, k, o)
			}
		}
		for k := range o {
			if !slices.Contains(cols, k) {
				t.Errorf("row %d has key %q, not one of Row's %v", i, k, cols)
			}
		}
		if o["mode"] != rows[i].Mode || o["nodes"] != float64(rows[i].Nodes) || o["messages_per_lookup"] != rows[i].MessagesPerLookup {
			t.Errorf("row %d is %v, want %+v", i, o, rows[i])
		}
	}
	buf.Reset()
	if err := compare.WriteJSON(&buf, nil); err != nil || strings.TrimSpace(buf.String()) != "[]" {
		t.Errorf("no rows: %q, %v; want []", buf.String(), err)
	}
}

// CSV: a header of the JSON keys, then each row, the numbers reading back exactly.
func TestWriteCSV(t *testing.T) {
	rows := handRows()
	var buf bytes.Buffer
	if err := compare.WriteCSV(&buf, rows); err != nil {
		t.Fatal(err)
	}
	recs, err := csv.NewReader(&buf).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != len(rows)+1 {
		t.Fatalf("%d records, want a header and %d rows", len(recs), len(rows))
	}
	// The header is Columns, and they are the JSON keys, in order.
	if strings.Join(recs[0], ",") != strings.Join(compare.Columns(), ",") {
		t.Errorf("header %v, want %v", recs[0], compare.Columns())
	}
	js, _ := json.Marshal(rows[1])
	var keys []string
	dec := json.NewDecoder(bytes.NewReader(js))
	dec.Token() // {
	for dec.More() {
		k, _ := dec.Token()
		keys = append(keys, k.(string))
		var skip any
		_ = dec.Decode(&skip)
	}
	at := 0
	for _, k := range keys { // every key, in the header's order (a key left out when empty is still a column)
		i := slices.Index(recs[0][at:], k)
		if i < 0 {
			t.Errorf("JSON key %q is not a column after %v", k, recs[0][:at])
			continue
		}
		at += i + 1
	}
	col := func(name string) int {
		for i, h := range recs[0] {
			if h == name {
				return i
			}
		}
		t.Fatalf("no column %q", name)
		return -1
	}
	for i, r := range rows {
		rec := recs[i+1]
		if rec[col("mode")] != r.Mode || rec[col("nodes")] != strconv.Itoa(r.Nodes) || rec[col("ttl")] != strconv.Itoa(r.TTL) {
			t.Errorf("row %d: %v, want %+v", i, rec, r)
		}
		for name, want := range map[string]float64{"expected_messages": r.ExpectedMessages,
			"bytes_per_lookup": r.BytesPerLookup, "success_rate": r.SuccessRate} {
			got, err := strconv.ParseFloat(rec[col(name)], 64)
			if err != nil || got != want {
				t.Errorf("row %d %s: %q, want %v", i, name, rec[col(name)], want)
			}
		}
	}
}

// The table has a header and a line a row, and puts the theory beside the measurement.
func TestWriteTable(t *testing.T) {
	rows := handRows()
	rows[0].SuccessRate = 0 // a row that found nothing has no hops or latency
	rows[3].MeanDegree = 6.27
	var buf bytes.Buffer
	if err := compare.WriteTable(&buf, rows); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
	if len(lines) != len(rows)+1 {
		t.Fatalf("%d lines, want %d:\n%s", len(lines), len(rows)+1, buf.String())
	}
	for _, h := range []string{"mode", "nodes", "ttl", "success (theory)", "msgs/lookup", "p95", "reached", "hops (theory)", "latency p50", "bytes/lookup"} {
		if !strings.Contains(lines[0], h) {
			t.Errorf("header %q lacks %q", lines[0], h)
		}
	}
	f := strings.Fields(lines[0+1])
	if f[0] != "dht" || f[1] != "100" || f[2] != "-" || f[3] != "-" {
		t.Errorf("first row %q", lines[1])
	}
	if !strings.Contains(lines[1], "0.00 (1.00)") || strings.Count(lines[1], " - ") < 3 {
		t.Errorf("a row that found nothing should show 0.00 (1.00) and no hops or latency: %q", lines[1])
	}
	flood := strings.Fields(lines[4]) // flood, 100 nodes, TTL 7
	if flood[0] != "flood" || flood[2] != "7" || flood[3] != "6.3" {
		t.Fatalf("row 4 %q", lines[4])
	}
	want := strconv.FormatFloat(rows[3].ExpectedMessages, 'f', 0, 64)
	if !strings.Contains(lines[4], "("+want+")") {
		t.Errorf("flood TTL 7 row %q lacks its expected messages (%s)", lines[4], want)
	}
}
