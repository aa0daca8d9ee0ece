package redisstore

import (
	"errors"
	"io"
	"net"
	"sync"
	"testing"
	"time"
)

// blackholeProxy is a TCP proxy on 127.0.0.1 in front of one Redis. While
// it black-holes, every byte a client sends is read and dropped, and no
// reply comes back: the client's command never reaches Redis and the call
// times out, as behind a partition, while Redis itself keeps running (its
// keys expire). A connection that lost bytes is out of step with Redis,
// so it is closed when the window ends; the client dials a new one.
type blackholeProxy struct {
	tb     testing.TB
	ln     net.Listener
	target string

	mu       sync.Mutex
	dropping bool
	closed   bool
	conns    map[*proxiedConn]struct{}
	wg       sync.WaitGroup
}

// proxiedConn is one client connection and its connection to Redis.
type proxiedConn struct {
	client, upstream net.Conn
	poisoned         bool // lost bytes in a black-hole window (under the proxy's mu)
}

// proxyConnLimit bounds the connections one proxy serves: a test opens a
// handful (one Store's pool).
const proxyConnLimit = 64

// startBlackholeProxy listens on a free loopback port and forwards to
// target until the test ends.
func startBlackholeProxy(tb testing.TB, target string) *blackholeProxy {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	p := &blackholeProxy{tb: tb, ln: ln, target: target, conns: map[*proxiedConn]struct{}{}}
	p.wg.Add(1)
	go p.accept()
	tb.Cleanup(p.close)
	return p
}

// addr is where clients connect.
func (p *blackholeProxy) addr() string { return p.ln.Addr().String() }

// blackhole starts dropping every byte, on open and new connections.
func (p *blackholeProxy) blackhole() {
	p.mu.Lock()
	p.dropping = true
	p.mu.Unlock()
}

// restore ends the window: connections that lost bytes are closed, the
// others and new ones forward again.
func (p *blackholeProxy) restore() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.dropping = false
	for c := range p.conns {
		if c.poisoned {
			c.client.Close()
			c.upstream.Close()
		}
	}
}

func (p *blackholeProxy) accept() {
	defer p.wg.Done()
	for served := 0; served < proxyConnLimit; served++ {
		client, err := p.ln.Accept()
		if err != nil {
			return // closed
		}
		upstream, err := net.DialTimeout("tcp", p.target, 2*time.Second)
		if err != nil {
			client.Close()
			continue
		}
		c := &proxiedConn{client: client, upstream: upstream}
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			client.Close()
			upstream.Close()
			return
		}
		p.conns[c] = struct{}{}
		p.mu.Unlock()
		p.wg.Add(2)
		go p.pipe(c, client, upstream)
		go p.pipe(c, upstream, client)
	}
	p.tb.Errorf("blackholeProxy: more than %d connections", proxyConnLimit)
}

// pipe copies from src to dst, dropping what arrives in a black-hole
// window, until either side closes; then it closes both.
func (p *blackholeProxy) pipe(c *proxiedConn, src, dst net.Conn) {
	defer p.wg.Done()
	defer func() {
		c.client.Close()
		c.upstream.Close()
		p.mu.Lock()
		delete(p.conns, c)
		p.mu.Unlock()
	}()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			p.mu.Lock()
			drop := p.dropping || c.poisoned
			if p.dropping {
				c.poisoned = true
			}
			p.mu.Unlock()
			if !drop {
				if _, werr := dst.Write(buf[:n]); werr != nil {
					return
				}
			}
		}
		if err != nil {
			if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
				p.tb.Logf("blackholeProxy: %v", err)
			}
			return
		}
	}
}

// close stops accepting, closes every connection and waits for the
// proxy's goroutines.
func (p *blackholeProxy) close() {
	p.ln.Close()
	p.mu.Lock()
	p.closed = true
	for c := range p.conns {
		c.client.Close()
		c.upstream.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}
