package swarm

// Event is something Fetch reports while it runs. Each kind marshals to one JSON object whose
// "event" field names it, with snake_case keys: `shoal swarm --json` prints them as they come.
type Event interface{ kind() string }

// Launch: the download begins. Node i is on Addrs[i].
type Launch struct {
	Event       string   `json:"event"` // "start"
	Mode        string   `json:"mode"`
	InfoHash    string   `json:"infohash"`
	Name        string   `json:"name"`
	Size        int64    `json:"size"`
	Files       int      `json:"files"`
	Pieces      int      `json:"pieces"`
	PieceLength int64    `json:"piece_length"`
	Addrs       []string `json:"addrs"`
	Seeders     []int    `json:"seeders"`
	Leechers    []int    `json:"leechers"`
	// Kills is how many leechers are to be killed midway (churn).
	Kills int `json:"kills"`
}

// Progress is one node's state, about four times a second for each node: leechers and the
// seeders alike.
type Progress struct {
	Event     string  `json:"event"` // "progress"
	Node      int     `json:"node"`
	Addr      string  `json:"addr"`
	Seeder    bool    `json:"seeder"`
	Seconds   float64 `json:"seconds"` // since the download began
	Completed int64   `json:"completed"`
	Size      int64   `json:"size"`
	Peers     int     `json:"peers"`
	DownRate  int64   `json:"down_rate"` // payload bytes per second
	UpRate    int64   `json:"up_rate"`
	Uploaded  int64   `json:"uploaded"`
}

// Complete: a leecher holds every piece, each verified against its SHA-1 hash. (The sha256 of
// the files against the original is checked once every leecher is done: see Report.)
type Complete struct {
	Event string `json:"event"` // "complete"
	Node  int    `json:"node"`
	Addr  string `json:"addr"`
	// Seconds is the node's download time, from its start; FirstPeer the time to its first
	// connection to a peer.
	Seconds    float64 `json:"seconds"`
	FirstPeer  float64 `json:"first_peer_seconds"`
	Downloaded int64   `json:"downloaded"`
	Uploaded   int64   `json:"uploaded"`
}

// Killed: a leecher was closed abruptly midway (churn), holding Completed of Size bytes.
type Killed struct {
	Event     string  `json:"event"` // "killed"
	Node      int     `json:"node"`
	Addr      string  `json:"addr"`
	Seconds   float64 `json:"seconds"` // since its start
	Completed int64   `json:"completed"`
	Size      int64   `json:"size"`
}

// Failed: a leecher's download ended in an error.
type Failed struct {
	Event  string `json:"event"` // "failed"
	Node   int    `json:"node"`
	Addr   string `json:"addr"`
	Reason string `json:"reason"`
}

func (Launch) kind() string   { return "start" }
func (Progress) kind() string { return "progress" }
func (Complete) kind() string { return "complete" }
func (Killed) kind() string   { return "killed" }
func (Failed) kind() string   { return "failed" }
func (*Report) kind() string  { return "summary" }

// Kind is the event's name, as in its "event" field.
func Kind(e Event) string { return e.kind() }
