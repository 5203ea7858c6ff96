package compare

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"reflect"
	"strconv"
	"strings"
	"text/tabwriter"
)

// WriteTable writes rows as an aligned text table for a person: each measurement with
// what theory expects of it beside it in brackets. The degree column is the overlay's mean
// degree, at which the theory of flooding is taken.
func WriteTable(w io.Writer, rows []Row) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "mode\tnodes\tttl\tdegree\tholders\tsuccess (theory)\tmsgs/lookup\tp95\t(theory)\treached\thops (theory)\tlatency p50\tp95 ms\tbytes/lookup")
	for _, r := range rows {
		ttl, degree := "-", "-"
		if r.TTL > 0 {
			ttl = strconv.Itoa(r.TTL)
		}
		switch {
		case r.MeanDegree > 0:
			degree = fmt.Sprintf("%.1f", r.MeanDegree)
		case r.Degree > 0:
			degree = strconv.Itoa(r.Degree)
		}
		hops, p50, p95 := "-", "-", "-"
		if r.SuccessRate > 0 {
			hops = fmt.Sprintf("%.1f", r.HopsToFirstHit)
			p50, p95 = fmt.Sprintf("%.1f", r.LatencyMsP50), fmt.Sprintf("%.1f", r.LatencyMsP95)
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%d\t%.2f (%.2f)\t%s\t%.0f\t(%.0f)\t%s\t%s (%.1f)\t%s\t%s\t%s\n",
			r.Mode, r.Nodes, ttl, degree, r.Holders,
			r.SuccessRate, r.ExpectedSuccess,
			count(r.MessagesPerLookup), r.MessagesPerLookupP95, r.ExpectedMessages,
			count(r.NodesReached), hops, r.ExpectedHops,
			p50, p95, humanBytes(r.BytesPerLookup))
	}
	return tw.Flush()
}

// count shows a mean count: one decimal while it is small.
func count(x float64) string {
	if x >= 100 {
		return fmt.Sprintf("%.0f", x)
	}
	return fmt.Sprintf("%.1f", x)
}

func humanBytes(b float64) string {
	switch {
	case b >= 1<<20:
		return fmt.Sprintf("%.1f MiB", b/(1<<20))
	case b >= 1<<10:
		return fmt.Sprintf("%.1f KiB", b/(1<<10))
	}
	return fmt.Sprintf("%.0f B", b)
}

// WriteJSON writes rows as one JSON array of row objects (the keys are Row's JSON names),
// followed by a newline.
func WriteJSON(w io.Writer, rows []Row) error {
	if rows == nil {
		rows = []Row{}
	}
	b, err := json.MarshalIndent(rows, "", "  ")
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

// Columns are the CSV columns: Row's JSON names, in the order of its fields.
func Columns() []string {
	t := reflect.TypeFor[Row]()
	cols := make([]string, 0, t.NumField())
	for i := range t.NumField() {
		cols = append(cols, jsonName(t.Field(i)))
	}
	return cols
}

func jsonName(f reflect.StructField) string {
	name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
	if name == "" {
		return f.Name
	}
	return name
}

// WriteCSV writes rows as CSV: a header of Columns, then one line a row. Numbers are
// written in full (the shortest form that reads back exactly).
func WriteCSV(w io.Writer, rows []Row) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(Columns()); err != nil {
		return err
	}
	for _, r := range rows {
		v := reflect.ValueOf(r)
		rec := make([]string, v.NumField())
		for i := range v.NumField() {
			f := v.Field(i)
			switch f.Kind() {
			case reflect.String:
				rec[i] = f.String()
			case reflect.Int, reflect.Int64:
				rec[i] = strconv.FormatInt(f.Int(), 10)
			case reflect.Bool:
				rec[i] = strconv.FormatBool(f.Bool())
			case reflect.Float64:
				rec[i] = strconv.FormatFloat(f.Float(), 'f', -1, 64)
			default:
				return fmt.Errorf("compare: csv: field %s has kind %s", v.Type().Field(i).Name, f.Kind())
			}
		}
		if err := cw.Write(rec); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}
