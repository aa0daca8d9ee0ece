package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Progress refresh intervals: a terminal redraws its bar often; a log or a
// pipe gets a plain line now and then so it stays readable.
const (
	progressBarInterval  = 100 * time.Millisecond
	progressLineInterval = 500 * time.Millisecond
	progressBarWidth     = 30
)

// progressCounts is what the workers update and the reporter reads.
type progressCounts struct {
	done       atomic.Int64 // requests finished, whatever the outcome
	failures   atomic.Int64 // requests that returned an error
	rejections atomic.Int64 // requests answered with a non-2xx status
}

// progress reports a running workload on w: a bar redrawn in place when w
// is a terminal, plain periodic lines otherwise, and always one final
// report when stopped. It starts one goroutine, which stop joins.
type progress struct {
	w        io.Writer
	tty      bool
	total    int64
	counts   *progressCounts
	start    time.Time
	quit     chan struct{}
	finished sync.WaitGroup
}

// isTerminal reports whether w is a character device (a terminal), using
// only os.File.Stat so the CLI needs no terminal library.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// startProgress starts reporting on w until stop is called.
func startProgress(w io.Writer, total int64, counts *progressCounts) *progress {
	p := &progress{w: w, tty: isTerminal(w), total: total, counts: counts, start: time.Now(), quit: make(chan struct{})}
	interval := progressLineInterval
	if p.tty {
		interval = progressBarInterval
	}
	p.finished.Add(1)
	go func() {
		defer p.finished.Done()
		tick := time.NewTicker(interval)
		defer tick.Stop()
		for {
			select {
			case <-p.quit:
				return
			case <-tick.C:
				p.report(false)
			}
		}
	}()
	return p
}

// stop ends the reporter goroutine and prints the final report.
func (p *progress) stop() {
	close(p.quit)
	p.finished.Wait()
	p.report(true)
}

func (p *progress) report(final bool) {
	done := p.counts.done.Load()
	fails := p.counts.failures.Load()
	rejs := p.counts.rejections.Load()
	elapsed := time.Since(p.start).Seconds()
	if !p.tty {
		fmt.Fprintf(p.w, "demo: %d/%d requests done, %d failures, %d rejections, %.1fs\n", done, p.total, fails, rejs, elapsed)
		return
	}
	filled := 0
	if p.total > 0 {
		filled = int(done * progressBarWidth / p.total)
	}
	pct := 100.0
	if p.total > 0 {
		pct = float64(done) * 100 / float64(p.total)
	}
	end := ""
	if final {
		end = "\n"
	}
	// \r and a trailing clear-to-end-of-line redraw the bar in place.
	fmt.Fprintf(p.w, "\r[%s%s] %5.1f%% %d/%d  failures %d  rejections %d  %.1fs\x1b[K%s",
		strings.Repeat("#", filled), strings.Repeat(".", progressBarWidth-filled), pct,
		done, p.total, fails, rejs, elapsed, end)
}
