package main

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"

	"github.com/urfave/cli/v3"
)

// profileFlags are seed's and get's profiling flags. They are hidden from the command's help
// (they are for measuring shoal, not for using it); the README documents them.
func profileFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "cpuprofile", Hidden: true, Usage: "write a pprof CPU profile to `FILE` at exit"},
		&cli.StringFlag{Name: "memprofile", Hidden: true, Usage: "write a pprof heap profile (allocations since start) to `FILE` at exit"},
	}
}

// startProfiles starts the profiles the flags ask for. The returned stop writes them; it
// runs once the node has closed, and its error is the first failure to write one.
func startProfiles(cmd *cli.Command) (stop func() error, err error) {
	cpu, mem := cmd.String("cpuprofile"), cmd.String("memprofile")
	var cpuFile *os.File
	if cpu != "" {
		if cpuFile, err = os.Create(cpu); err != nil {
			return nil, fmt.Errorf("--cpuprofile: %w", err)
		}
		if err = pprof.StartCPUProfile(cpuFile); err != nil {
			cpuFile.Close()
			return nil, fmt.Errorf("--cpuprofile: %w", err)
		}
	}
	return func() error {
		var errs []error
		if cpuFile != nil {
			pprof.StopCPUProfile()
			if err := cpuFile.Close(); err != nil {
				errs = append(errs, fmt.Errorf("--cpuprofile: %w", err))
			}
		}
		if mem != "" {
			errs = append(errs, writeHeapProfile(mem))
		}
		return errors.Join(errs...)
	}, nil
}

// writeHeapProfile writes the heap profile, which holds both in-use and total allocated
// (alloc_space) samples: `go tool pprof -sample_index=alloc_space`.
func writeHeapProfile(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("--memprofile: %w", err)
	}
	runtime.GC() // up-to-date in-use figures
	if err := pprof.Lookup("allocs").WriteTo(f, 0); err != nil {
		f.Close()
		return fmt.Errorf("--memprofile: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("--memprofile: %w", err)
	}
	return nil
}
