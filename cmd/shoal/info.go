package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/urfave/cli/v3"

	"github.com/shoalp2p/shoal/peer/meta"
)

// infoJSON is what `shoal info --json` prints.
type infoJSON struct {
	Name        string     `json:"name"`
	InfoHash    string     `json:"infohash"`
	Size        int64      `json:"size"`
	Pieces      int        `json:"pieces"`
	PieceLength int64      `json:"piece_length"`
	Private     bool       `json:"private"`
	Files       []fileJSON `json:"files"`
	Trackers    [][]string `json:"trackers"`
	Comment     string     `json:"comment,omitempty"`
	CreatedBy   string     `json:"created_by,omitempty"`
	Created     string     `json:"created,omitempty"`
	Magnet      string     `json:"magnet"`
}

type fileJSON struct {
	Path string `json:"path"`
	Size int64  `json:"size"`
}

func infoCommand() *cli.Command {
	return &cli.Command{
		Name:         "info",
		Usage:        "show what a .torrent, magnet link or info-hash describes",
		ArgsUsage:    "FILE.torrent|MAGNET|INFOHASH",
		Flags:        []cli.Flag{&cli.BoolFlag{Name: "json", Usage: "print one JSON object"}},
		OnUsageError: onUsageError,
		Action: func(ctx context.Context, cmd *cli.Command) error {
			arg, err := oneArg(cmd, "torrent")
			if err != nil {
				return err
			}
			src, err := meta.Load(arg)
			if err != nil {
				return err
			}
			out := describe(src)
			w := cmd.Root().Writer
			if cmd.Bool("json") {
				enc := json.NewEncoder(w)
				enc.SetIndent("", "  ")
				return enc.Encode(out)
			}
			fmt.Fprintf(w, "name:      %s\n", orUnknown(out.Name))
			fmt.Fprintf(w, "infohash:  %s\n", out.InfoHash)
			if src.Info == nil {
				fmt.Fprintf(w, "metadata:  not in a magnet link or info-hash; peers send it on download\n")
			} else {
				fmt.Fprintf(w, "size:      %s (%d bytes)\n", meta.SizeText(out.Size), out.Size)
				fmt.Fprintf(w, "pieces:    %d of %s\n", out.Pieces, meta.SizeText(out.PieceLength))
				fmt.Fprintf(w, "private:   %v\n", out.Private)
				if out.Comment != "" {
					fmt.Fprintf(w, "comment:   %s\n", out.Comment)
				}
				if out.CreatedBy != "" || out.Created != "" {
					fmt.Fprintf(w, "created:   %s %s\n", out.Created, out.CreatedBy)
				}
				fmt.Fprintf(w, "files:     %d\n", len(out.Files))
				for _, f := range out.Files {
					fmt.Fprintf(w, "  %10s  %s\n", meta.SizeText(f.Size), f.Path)
				}
			}
			fmt.Fprintf(w, "trackers:  %d\n", len(out.Trackers))
			for i, tier := range out.Trackers {
				fmt.Fprintf(w, "  tier %d: %s\n", i, strings.Join(tier, " "))
			}
			fmt.Fprintf(w, "magnet:    %s\n", out.Magnet)
			return nil
		},
	}
}

func describe(src *meta.Source) infoJSON {
	out := infoJSON{Name: src.Name, InfoHash: src.InfoHash.HexString(), Trackers: src.Trackers, Magnet: meta.Magnet(src)}
	if out.Trackers == nil {
		out.Trackers = [][]string{}
	}
	if info := src.Info; info != nil {
		out.Size, out.Pieces, out.PieceLength = info.TotalLength(), info.NumPieces(), info.PieceLength
		out.Private = info.Private != nil && *info.Private
		for _, f := range info.UpvertedFiles() {
			p := strings.Join(append([]string{info.BestName()}, f.BestPath()...), "/")
			out.Files = append(out.Files, fileJSON{Path: p, Size: f.Length})
		}
	}
	if mi := src.MetaInfo; mi != nil {
		out.Comment, out.CreatedBy = meta.Printable(mi.Comment), meta.Printable(mi.CreatedBy)
		if mi.CreationDate > 0 {
			out.Created = time.Unix(mi.CreationDate, 0).UTC().Format(time.RFC3339)
		}
	}
	return out
}

func orUnknown(s string) string {
	if s == "" {
		return "(unknown until the metadata arrives)"
	}
	return s
}
