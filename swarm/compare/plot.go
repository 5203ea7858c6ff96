package compare

import (
	"bytes"
	"cmp"
	"fmt"
	"image/color"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/font"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/text"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"

	// The chart formats register themselves with draw.NewFormattedCanvas.
	_ "gonum.org/v1/plot/vg/vgimg"
	_ "gonum.org/v1/plot/vg/vgsvg"
)

// PlotFormats are the chart formats WritePlot knows, by file extension.
var PlotFormats = []string{"svg", "png"}

// PlotFormat is the chart format a file name asks for: its extension, which must be one of
// PlotFormats.
func PlotFormat(path string) (string, error) {
	ext := strings.ToLower(strings.TrimPrefix(filepath.Ext(path), "."))
	if !slices.Contains(PlotFormats, ext) {
		return "", fmt.Errorf("chart %q: unknown format %q, want a file name ending in .svg or .png", path, ext)
	}
	return ext, nil
}

// The chart's size, and the room its title and legend take.
const (
	plotWidth   = 11 * vg.Inch
	plotHeight  = 5 * vg.Inch
	titleHeight = 0.8 * vg.Inch
	legendWidth = 1.9 * vg.Inch
)

// SavePlot draws rows as a chart (WritePlot) into the file at path, in the format its
// extension names. The chart is drawn before the file is created: a failure leaves no file.
func SavePlot(path string, rows []Row) error {
	format, err := PlotFormat(path)
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	if err := WritePlot(&buf, format, rows); err != nil {
		return err
	}
	return os.WriteFile(path, buf.Bytes(), 0o644)
}

// series is one line of the chart: a mode at one TTL, over the network sizes.
type series struct {
	mode string
	ttl  int
	rows []Row // by Nodes
}

func (s series) name() string {
	switch s.mode {
	case "dht":
		return "dht (Kademlia)"
	case "walk":
		return fmt.Sprintf("walk, %d steps", s.ttl)
	}
	return fmt.Sprintf("%s, TTL %d", s.mode, s.ttl)
}

// WritePlot draws rows as a chart in format ("svg" or "png") to w. Its left panel is messages
// per lookup against the number of nodes, log-log; its right panel the share of lookups that
// found the content. Each mode (and each TTL of flood and walk) is one colour: measured as a
// solid line with points, theory (Expect) dashed.
func WritePlot(w io.Writer, format string, rows []Row) error {
	if !slices.Contains(PlotFormats, format) {
		return fmt.Errorf("compare: chart format %q: want one of %v", format, PlotFormats)
	}
	if len(rows) == 0 {
		return fmt.Errorf("compare: no rows to chart")
	}
	for _, r := range rows {
		if r.Nodes < 1 {
			return fmt.Errorf("compare: chart: a row of %d nodes", r.Nodes)
		}
	}
	all := group(rows)

	msgs := plot.New()
	msgs.Title.Text = "Messages per lookup (mean; dashed: theory)"
	msgs.X.Label.Text = "nodes in the network (log)"
	msgs.Y.Label.Text = "messages per lookup (log)"
	msgs.X.Scale, msgs.Y.Scale = plot.LogScale{}, plot.LogScale{}
	msgs.Y.Tick.Marker = plot.LogTicks{Prec: -1}
	msgs.Add(plotter.NewGrid())

	succ := plot.New()
	succ.Title.Text = "Lookups that found the content (dashed: theory)"
	succ.X.Label.Text = "nodes in the network (log)"
	succ.Y.Label.Text = "success rate"
	succ.X.Scale = plot.LogScale{}
	succ.Add(plotter.NewGrid())

	legend := plot.NewLegend()
	legend.Top, legend.Left = true, true
	legend.TextStyle.Font.Size = 11

	var ymin, ymax = math.Inf(1), math.Inf(-1)
	for i, s := range all {
		c, shape := style(all, i)
		var measured, theory, won, wonTheory plotter.XYs
		for _, r := range s.rows {
			n := float64(r.Nodes)
			if r.MessagesPerLookup > 0 {
				measured = append(measured, plotter.XY{X: n, Y: r.MessagesPerLookup})
				ymin, ymax = min(ymin, r.MessagesPerLookup), max(ymax, r.MessagesPerLookup)
			}
			if r.ExpectedMessages > 0 {
				theory = append(theory, plotter.XY{X: n, Y: r.ExpectedMessages})
				ymin, ymax = min(ymin, r.ExpectedMessages), max(ymax, r.ExpectedMessages)
			}
			won = append(won, plotter.XY{X: n, Y: r.SuccessRate})
			wonTheory = append(wonTheory, plotter.XY{X: n, Y: r.ExpectedSuccess})
		}
		solid := draw.LineStyle{Color: c, Width: vg.Points(2)}
		dashed := draw.LineStyle{Color: c, Width: vg.Points(1.5), Dashes: []vg.Length{vg.Points(6), vg.Points(4)}}
		glyph := draw.GlyphStyle{Color: c, Radius: vg.Points(3.5), Shape: shape}
		inLegend := false
		for _, p := range []struct {
			on           *plot.Plot
			meas, expect plotter.XYs
		}{{msgs, measured, theory}, {succ, won, wonTheory}} {
			if len(p.expect) > 0 {
				l, err := plotter.NewLine(p.expect)
				if err != nil {
					return fmt.Errorf("compare: chart: %w", err)
				}
				l.LineStyle = dashed
				p.on.Add(l)
			}
			if len(p.meas) > 0 {
				l, pts, err := plotter.NewLinePoints(p.meas)
				if err != nil {
					return fmt.Errorf("compare: chart: %w", err)
				}
				l.LineStyle, pts.GlyphStyle = solid, glyph
				p.on.Add(l, pts)
				if !inLegend {
					inLegend = true
					legend.Add(s.name(), l, pts)
				}
			}
		}
	}
	grey := color.Gray{Y: 90}
	measuredKey, _ := plotter.NewLine(plotter.XYs{{}})
	measuredKey.LineStyle = draw.LineStyle{Color: grey, Width: vg.Points(2)}
	theoryKey, _ := plotter.NewLine(plotter.XYs{{}})
	theoryKey.LineStyle = draw.LineStyle{Color: grey, Width: vg.Points(1.5), Dashes: []vg.Length{vg.Points(6), vg.Points(4)}}
	legend.Add("")
	legend.Add("measured", measuredKey)
	legend.Add("theory", theoryKey)

	// Axes: the network sizes as ticks, with room on both sides so that one size still draws.
	sizes := sizesOf(rows)
	var ticks plot.ConstantTicks
	for _, n := range sizes {
		ticks = append(ticks, plot.Tick{Value: float64(n), Label: strconv.Itoa(n)})
	}
	for _, p := range []*plot.Plot{msgs, succ} {
		p.X.Min, p.X.Max = float64(sizes[0])/1.5, float64(sizes[len(sizes)-1])*1.5
		p.X.Tick.Marker = ticks
	}
	if math.IsInf(ymin, 0) {
		ymin, ymax = 1, 10
	}
	msgs.Y.Min, msgs.Y.Max = ymin/1.5, ymax*1.5
	succ.Y.Min, succ.Y.Max = 0, 1.05

	c, err := draw.NewFormattedCanvas(plotWidth, plotHeight, format)
	if err != nil {
		return fmt.Errorf("compare: chart: %w", err)
	}
	dc := draw.New(c)
	dc.FillPolygon(color.White, []vg.Point{dc.Min, {X: dc.Min.X, Y: dc.Max.Y}, dc.Max, {X: dc.Max.X, Y: dc.Min.Y}})
	title := text.Style{Color: color.Black, Font: font.From(plot.DefaultFont, 15), XAlign: draw.XCenter,
		YAlign: draw.YTop, Handler: plot.DefaultTextHandler}
	mid := (dc.Min.X + dc.Max.X) / 2
	dc.FillText(title, vg.Point{X: mid, Y: dc.Max.Y - vg.Points(8)}, "shoal compare: the cost of a search, DHT lookups vs flooding and random walks")
	sub := title
	sub.Font = font.From(plot.DefaultFont, 11)
	dc.FillText(sub, vg.Point{X: mid, Y: dc.Max.Y - vg.Points(30)}, chartSubtitle(rows))

	panels := draw.Crop(dc, 0, -legendWidth, 0, -titleHeight)
	tiles := draw.Tiles{Rows: 1, Cols: 2, PadX: vg.Points(24), PadLeft: vg.Points(8), PadBottom: vg.Points(8), PadRight: vg.Points(8)}
	msgs.Draw(tiles.At(panels, 0, 0))
	succ.Draw(tiles.At(panels, 1, 0))
	legend.Draw(draw.Crop(dc, plotWidth-legendWidth, -vg.Points(4), 0, -titleHeight-vg.Points(20)))

	_, err = c.WriteTo(w)
	return err
}

// Each mode has its hue, and its TTLs go from light to dark: the DHT red, flooding blue,
// walks green.
var hues = map[string][2]color.RGBA{
	"dht":   {{0xd6, 0x27, 0x28, 0xff}, {0xd6, 0x27, 0x28, 0xff}},
	"flood": {{0x6b, 0xae, 0xd6, 0xff}, {0x08, 0x30, 0x6b, 0xff}},
	"walk":  {{0x74, 0xc4, 0x76, 0xff}, {0x00, 0x44, 0x1b, 0xff}},
}

// style is the colour and point shape of series i: its mode's hue, darker for a larger TTL,
// and a shape for each TTL of the mode.
func style(all []series, i int) (color.Color, draw.GlyphDrawer) {
	s := all[i]
	rank, count := 0, 0
	for j, o := range all {
		if o.mode == s.mode {
			if j < i {
				rank++
			}
			count++
		}
	}
	shapes := []draw.GlyphDrawer{draw.CircleGlyph{}, draw.BoxGlyph{}, draw.PyramidGlyph{}, draw.RingGlyph{},
		draw.SquareGlyph{}, draw.TriangleGlyph{}, draw.CrossGlyph{}}
	hue, ok := hues[s.mode]
	if !ok {
		return plotutil.Color(i), shapes[rank%len(shapes)]
	}
	f := 0.0
	if count > 1 {
		f = float64(rank) / float64(count-1)
	}
	mix := func(a, b uint8) uint8 { return uint8(math.Round(float64(a) + f*(float64(b)-float64(a)))) }
	light, dark := hue[0], hue[1]
	return color.RGBA{mix(light.R, dark.R), mix(light.G, dark.G), mix(light.B, dark.B), 0xff}, shapes[rank%len(shapes)]
}

// chartSubtitle says how the search was measured.
func chartSubtitle(rows []Row) string {
	r := rows[0]
	net := "loopback sockets"
	if r.Sim {
		net = "simulated network"
	}
	var sum, n float64
	for _, r := range rows {
		if r.MeanDegree > 0 {
			sum, n = sum+r.MeanDegree, n+1
		}
	}
	mean := ""
	if n > 0 {
		mean = fmt.Sprintf(", mean %.1f", sum/n)
	}
	return fmt.Sprintf("content on %s of the nodes, %d lookups a point, overlay degree %d..%d%s, %s",
		share(r.Replication), r.Lookups, degreeOf(rows), 2*degreeOf(rows), mean, net)
}

func share(r float64) string {
	return strconv.FormatFloat(100*r, 'f', -1, 64) + "%"
}

// degreeOf is the overlay degree of the rows that have one (the DHT's is 0).
func degreeOf(rows []Row) int {
	for _, r := range rows {
		if r.Degree > 0 {
			return r.Degree
		}
	}
	return DefaultDegree
}

// group splits rows into series, in the order of Modes and then TTL, each by size.
func group(rows []Row) []series {
	type key struct {
		mode string
		ttl  int
	}
	idx := map[key]int{}
	var out []series
	for _, r := range rows {
		k := key{r.Mode, r.TTL}
		i, ok := idx[k]
		if !ok {
			i = len(out)
			idx[k] = i
			out = append(out, series{mode: r.Mode, ttl: r.TTL})
		}
		out[i].rows = append(out[i].rows, r)
	}
	rank := func(m string) int {
		if i := slices.Index(Modes, m); i >= 0 {
			return i
		}
		return len(Modes)
	}
	slices.SortStableFunc(out, func(a, b series) int {
		return cmp.Or(cmp.Compare(rank(a.mode), rank(b.mode)), cmp.Compare(a.ttl, b.ttl))
	})
	for _, s := range out {
		slices.SortStableFunc(s.rows, func(a, b Row) int { return cmp.Compare(a.Nodes, b.Nodes) })
	}
	return out
}

func sizesOf(rows []Row) []int {
	var ns []int
	for _, r := range rows {
		ns = append(ns, r.Nodes)
	}
	slices.Sort(ns)
	return slices.Compact(ns)
}
