package api

import (
	"context"
	"net/http"
	"sync/atomic"

	"github.com/julienschmidt/httprouter"

	"github.com/chunked-uploader/chunked-uploader/host"
	"github.com/chunked-uploader/chunked-uploader/host/node"
	"github.com/chunked-uploader/chunked-uploader/sdk/wire"
)

// A node behind a load balancer (docs/deploy.md, "Scaling out"): every upload lives on the
// node that created it and its id names that node (package node), so the balancer routes
// on the URL path. The server's part of that contract is here: a request about an upload
// of another node is refused with 421 and the owner's name, a node that is stopping takes
// no new uploads, and /health is cheap enough to be polled by every balancer.

// WithNode makes the server the node name: the upload service must create ids with the same
// name. Requests about uploads that name another node answer 421 wrong_node, and init
// answers 503 backend_unavailable while the storage backend is unhealthy, so that a
// balancer without active health checks (nginx) moves on to another node.
func WithNode(name string) Option { return func(s *Server) { s.cluster.name = name } }

// cluster is the server's state as a node.
type cluster struct {
	name     string // "" for a single server
	draining atomic.Bool
}

// Drain tells the server that it is stopping: from now on init answers 503 node_draining
// with Retry-After, and /health 503 with status "draining", so that load balancers send new
// uploads to other nodes; every other route keeps serving the uploads already here. It
// cannot be undone.
func (s *Server) Drain() { s.cluster.draining.Store(true) }

// owned serves h only if the upload of the path's id is this node's (see serves).
func (s *Server) owned(h httprouter.Handle) httprouter.Handle {
	return func(w http.ResponseWriter, r *http.Request, ps httprouter.Params) {
		if s.serves(w, r, ps.ByName("id")) {
			h(w, r, ps)
		}
	}
}

// serves reports whether this node serves upload id; if not, it has answered 421
// wrong_node with the owner's name. Without a node name every upload is served, as by a
// single server.
func (s *Server) serves(w http.ResponseWriter, r *http.Request, id string) bool {
	owner, ok := node.Owner(id)
	if s.cluster.name == "" || !ok || owner == s.cluster.name {
		return true
	}
	// A random id (made before NODE_ID was set) names a node by chance about once in
	// 110,000: such an upload is served where it is.
	if _, err := s.svc.Status(r.Context(), id, false); err == nil {
		return true
	}
	if r.ContentLength != 0 {
		w.Header().Set("Connection", "close") // the body is not read
	}
	s.log.Warn("request for an upload of another node: check the load balancer's routing",
		"request_id", requestID(r), "method", r.Method, "path", r.URL.Path, "owner", owner)
	writeJSON(w, http.StatusMisdirectedRequest, wire.ErrorBody{
		Error: "upload " + id + " belongs to node " + owner + ", and this is node " + s.cluster.name +
			": every request about an upload must go to the node named in its file_id (see docs/deploy.md, Scaling out)",
		Code: string(host.CodeWrongNode), Status: http.StatusMisdirectedRequest, OwnerNode: owner, Node: s.cluster.name,
	})
	return false
}

// accepting serves h (init) unless the node is draining or, on a node, its backend is
// unhealthy: a balancer then sends the request to another node.
func (s *Server) accepting(h httprouter.Handle) httprouter.Handle {
	return func(w http.ResponseWriter, r *http.Request, ps httprouter.Params) {
		if s.cluster.draining.Load() {
			w.Header().Set("Retry-After", "1")
			s.writeError(w, r, host.Errorf(host.CodeNodeDraining,
				"this server is shutting down and takes no new uploads; send init again (a load balancer sends it to another node)"))
			return
		}
		if s.cluster.name != "" {
			if err := s.backendHealth(r.Context()); err != nil {
				w.Header().Set("Retry-After", "5")
				s.writeError(w, r, host.Wrap(err, host.CodeBackendUnavailable, healthMessage(err)))
				return
			}
		}
		h(w, r, ps)
	}
}

// backendHealth checks the storage backend. The plugin manager caches the answer for
// HEALTH_CACHE_TTL and lets concurrent callers share one probe.
func (s *Server) backendHealth(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, healthTimeout)
	defer cancel()
	return s.svc.Health(ctx)
}
