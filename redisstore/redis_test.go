package redisstore

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// AddrEnv names the environment variable that points the tests at a
// running Redis (host:port); .ci/run's redisstore/ci.sh sets it.
const AddrEnv = "AGENTAUTH_REDIS_ADDR"

// redisAddr returns the Redis the tests share: AddrEnv, or a redis-server
// this test starts (and stops) when the binary is on PATH. Tests isolate
// themselves with a unique key prefix, not with separate servers.
func redisAddr(tb testing.TB) string {
	tb.Helper()
	if addr := os.Getenv(AddrEnv); addr != "" {
		return addr
	}
	return startRedis(tb, 0).addr
}

// redisServer is a redis-server process owned by one test.
type redisServer struct {
	tb   testing.TB
	port int
	addr string
	cmd  *exec.Cmd
	done chan struct{}
}

// startRedis starts redis-server on 127.0.0.1:port (a free port when port
// is 0), without persistence, waits until it answers PING and stops it when
// the test ends. It skips the test when redis-server is not installed.
func startRedis(tb testing.TB, port int) *redisServer {
	tb.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		tb.Skipf("redis-server is not on PATH and %s is unset: install redis-server (apt-get install -y redis-server) or point %s at a Redis", AddrEnv, AddrEnv)
	}
	if port == 0 {
		port = freePort(tb)
	}
	r := &redisServer{tb: tb, port: port, addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port))}
	r.start(bin)
	tb.Cleanup(r.stop)
	return r
}

func freePort(tb testing.TB) int {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func (r *redisServer) start(bin string) {
	r.tb.Helper()
	r.cmd = exec.Command(bin, "--port", strconv.Itoa(r.port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--daemonize", "no", "--loglevel", "warning")
	if err := r.cmd.Start(); err != nil {
		r.tb.Fatalf("starting redis-server: %v", err)
	}
	done := make(chan struct{})
	r.done = done
	cmd := r.cmd
	go func() { cmd.Wait(); close(done) }()
	if err := waitPing(r.addr, r.done, 10*time.Second); err != nil {
		r.kill()
		r.tb.Fatalf("redis-server on %s: %v", r.addr, err)
	}
}

// waitPing polls PING until Redis answers: the server is another process,
// so there is no channel to wait on.
func waitPing(addr string, exited <-chan struct{}, limit time.Duration) error {
	c := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1, DialTimeout: 100 * time.Millisecond,
		ContextTimeoutEnabled: true, Protocol: 2, DisableIdentity: true})
	defer c.Close()
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		err := c.Ping(ctx).Err()
		cancel()
		if err == nil {
			return nil
		}
		select {
		case <-exited:
			return errors.New("redis-server exited")
		case <-time.After(10 * time.Millisecond):
		}
	}
	return fmt.Errorf("no PING answer within %v", limit)
}

// kill stops the server at once (SIGKILL), losing its data.
func (r *redisServer) kill() {
	if r.cmd == nil {
		return
	}
	r.cmd.Process.Signal(syscall.SIGCONT) // a paused process must run to die cleanly for Wait
	r.cmd.Process.Kill()
	<-r.done
	r.cmd = nil
}

// restart starts a new server on the same port.
func (r *redisServer) restart() {
	r.tb.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		r.tb.Fatal(err)
	}
	r.start(bin)
}

// pause freezes the server (SIGSTOP): connections are accepted by the
// kernel but never answered, as with an overloaded or partitioned Redis.
func (r *redisServer) pause() { r.cmd.Process.Signal(syscall.SIGSTOP) }

// resume undoes pause.
func (r *redisServer) resume() { r.cmd.Process.Signal(syscall.SIGCONT) }

func (r *redisServer) stop() { r.kill() }

// newClient returns a client for addr that honours context deadlines, as
// New requires, and closes it when the test ends.
func newClient(tb testing.TB, addr string) *redis.Client {
	c := redis.NewClient(&redis.Options{Addr: addr, ContextTimeoutEnabled: true})
	tb.Cleanup(func() { c.Close() })
	return c
}

// uniquePrefix isolates one test's keys on a shared Redis.
func uniquePrefix(tb testing.TB) string {
	return fmt.Sprintf("agentauth:test:%d:%s:", time.Now().UnixNano(), tb.Name())
}
