package compare_test

import (
	"bytes"
	"encoding/xml"
	"image/png"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shoalp2p/shoal/swarm/compare"
)

// The SVG chart is well-formed XML with a title, both panels' axis labels and a legend entry
// for every series.
func TestPlotSVG(t *testing.T) {
	var buf bytes.Buffer
	if err := compare.WritePlot(&buf, "svg", handRows()); err != nil {
		t.Fatal(err)
	}
	dec := xml.NewDecoder(&buf)
	var root string
	var texts []string
	var inText bool
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("not valid XML: %v", err)
		}
		switch tok := tok.(type) {
		case xml.StartElement:
			if root == "" {
				root = tok.Name.Local
			}
			inText = tok.Name.Local == "text"
		case xml.CharData:
			if inText {
				texts = append(texts, string(tok))
			}
		case xml.EndElement:
			inText = false
		}
	}
	if root != "svg" {
		t.Fatalf("root element %q, want svg", root)
	}
	all := strings.Join(texts, "\n")
	for _, want := range []string{"shoal compare", "Messages per lookup", "success rate", "nodes in the network",
		"dht (Kademlia)", "flood, TTL 3", "flood, TTL 5", "flood, TTL 7", "walk, 7 steps", "theory", "measured", "100", "1000"} {
		if !strings.Contains(all, want) {
			t.Errorf("the chart has no text %q; its texts: %q", want, texts)
		}
	}
}

// The PNG chart decodes, has the chart's size, and is not blank: it has the colours of its lines.
func TestPlotPNG(t *testing.T) {
	path := filepath.Join(t.TempDir(), "chart.png")
	if err := compare.SavePlot(path, handRows()); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("not a PNG: %v", err)
	}
	b := img.Bounds()
	if b.Dx() < 800 || b.Dy() < 300 || b.Dx() < b.Dy() {
		t.Fatalf("image is %v, want a wide chart", b)
	}
	white, coloured := 0, 0
	for y := b.Min.Y; y < b.Max.Y; y += 2 {
		for x := b.Min.X; x < b.Max.X; x += 2 {
			r, g, bl, _ := img.At(x, y).RGBA()
			switch {
			case r > 0xf000 && g > 0xf000 && bl > 0xf000:
				white++
			case max(r, g, bl)-min(r, g, bl) > 0x4000:
				coloured++
			}
		}
	}
	if white == 0 || coloured < 200 {
		t.Errorf("%d white and %d coloured samples: the chart looks blank", white, coloured)
	}
}

// One network size, and a row with no messages, still draw (the axes get room around them).
func TestPlotOneSize(t *testing.T) {
	var rows []compare.Row
	for _, r := range handRows() {
		if r.Nodes == 100 {
			rows = append(rows, r)
		}
	}
	rows[0].MessagesPerLookup, rows[0].SuccessRate = 0, 0
	for _, format := range compare.PlotFormats {
		var buf bytes.Buffer
		if err := compare.WritePlot(&buf, format, rows); err != nil || buf.Len() == 0 {
			t.Errorf("%s: %v (%d bytes)", format, err, buf.Len())
		}
	}
}

// A chart that cannot be drawn is an error, and no file is left.
func TestPlotErrors(t *testing.T) {
	dir := t.TempDir()
	for _, path := range []string{"chart.pdf", "chart", "chart.svg.txt"} {
		if _, err := compare.PlotFormat(path); err == nil {
			t.Errorf("PlotFormat(%q) accepted", path)
		}
		if err := compare.SavePlot(filepath.Join(dir, path), handRows()); err == nil || !strings.Contains(err.Error(), ".svg or .png") {
			t.Errorf("SavePlot(%q): %v", path, err)
		}
	}
	if f, err := compare.PlotFormat("A.SVG"); err != nil || f != "svg" {
		t.Errorf("PlotFormat(A.SVG) = %q, %v", f, err)
	}
	if err := compare.SavePlot(filepath.Join(dir, "empty.svg"), nil); err == nil {
		t.Error("a chart of no rows was drawn")
	}
	bad := handRows()
	bad[1].Nodes = 0
	if err := compare.WritePlot(io.Discard, "png", bad); err == nil {
		t.Error("a row of 0 nodes was drawn on a log axis")
	}
	if err := compare.SavePlot(filepath.Join(dir, "no", "such", "dir.svg"), handRows()); err == nil {
		t.Error("saved into a missing folder")
	}
	left, _ := os.ReadDir(dir)
	for _, e := range left {
		t.Errorf("left %s behind", e.Name())
	}
}
