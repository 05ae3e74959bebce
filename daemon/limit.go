package daemon

import (
	"net"
	"sync"
)

// limitListener accepts at most n connections at a time; the others wait
// in the socket's backlog until one closes. Unlike x/net's netutil
// LimitListener, its connections keep the *net.UnixConn methods (through
// embedding), so the control server can still read the peer's
// credentials.
type limitListener struct {
	*net.UnixListener
	sem       chan struct{}
	done      chan struct{}
	closeOnce sync.Once
}

func newLimitListener(l *net.UnixListener, n int) *limitListener {
	return &limitListener{UnixListener: l, sem: make(chan struct{}, n), done: make(chan struct{})}
}

// Accept waits for a free slot, then for a connection.
func (l *limitListener) Accept() (net.Conn, error) {
	select {
	case l.sem <- struct{}{}:
	case <-l.done:
		return nil, net.ErrClosed
	}
	c, err := l.AcceptUnix()
	if err != nil {
		<-l.sem
		return nil, err
	}
	return &limitConn{UnixConn: c, release: sync.OnceFunc(func() { <-l.sem })}, nil
}

// Close stops accepting, also for an Accept waiting for a slot.
func (l *limitListener) Close() error {
	l.closeOnce.Do(func() { close(l.done) })
	return l.UnixListener.Close()
}

// limitConn frees its slot once, when first closed.
type limitConn struct {
	*net.UnixConn
	release func()
}

func (c *limitConn) Close() error {
	err := c.UnixConn.Close()
	c.release()
	return err
}
