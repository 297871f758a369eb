package app

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/fieldwatch/fieldwatch/telemetry"
)

// ModeRequest is the body of POST /devices/{id}/mode: a technician puts a
// device in maintenance or calibration (or stopped) by hand, and back to
// normal, with `fieldwatch-gateway mode`.
type ModeRequest struct {
	Mode string `json:"mode"` // one of telemetry.Modes
	By   string `json:"by"`   // who, as they give it; recorded in the event
}

// ModeAnswer is what the gateway answers: the event it wrote.
type ModeAnswer struct {
	Device string    `json:"device"`
	Mode   string    `json:"mode"`
	Time   time.Time `json:"time"`
	Seq    uint64    `json:"seq"` // the event's sequence in the buffer
}

// setMode writes a mode event (source "technician") for one of the
// config's devices into the buffer, where every uplink reads it in order:
// an HJ 212 uplink flags that device's readings M, C or F from there on,
// the cloud records who did it and when. Only a client on the gateway
// itself (loopback) may: the flags a bureau receives decide whether data
// counts, so setting them is not for whoever reaches http.listen.
func (a *App) setMode(w http.ResponseWriter, req *http.Request) {
	if host, _, err := net.SplitHostPort(req.RemoteAddr); err != nil || !net.ParseIP(host).IsLoopback() {
		http.Error(w, "a device's mode is set on the gateway itself (loopback), not over the network", http.StatusForbidden)
		return
	}
	r := a.current()
	if r == nil {
		http.Error(w, "starting or reloading", http.StatusServiceUnavailable)
		return
	}
	var m ModeRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, req.Body, 4<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		http.Error(w, "body: "+err.Error(), http.StatusBadRequest)
		return
	}
	id := req.PathValue("id")
	if !r.hasDevice(id) {
		http.Error(w, fmt.Sprintf("no device %q in the config", id), http.StatusNotFound)
		return
	}
	if !telemetry.ValidMode(m.Mode) {
		http.Error(w, fmt.Sprintf("%q is not a mode (%v)", m.Mode, telemetry.Modes), http.StatusBadRequest)
		return
	}
	e := telemetry.Event{Device: id, Kind: telemetry.EventMode, Time: time.Now(), Clock: r.clock(),
		Attrs: map[string]string{"state": m.Mode, "source": "technician"}}
	if m.By != "" {
		e.Attrs["by"] = telemetry.AttrText(m.By)
	}
	if err := e.Validate(); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	seq, err := r.buf.AppendEvents([]telemetry.Event{e})
	if err != nil {
		a.log.Error("cannot store a technician's mode event", "device", id, "mode", m.Mode, "err", err)
		http.Error(w, "cannot store the event: "+err.Error(), http.StatusInternalServerError)
		return
	}
	a.log.Warn("device mode set by hand", "device", id, "mode", m.Mode, "by", m.By, "seq", seq)
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(ModeAnswer{Device: id, Mode: m.Mode, Time: e.Time.UTC(), Seq: seq})
}

// hasDevice reports whether id is a device of the config: a Modbus unit or
// a stream device.
func (r *running) hasDevice(id string) bool {
	for _, bc := range r.cfg.Buses {
		for _, d := range bc.Devices {
			if d.ID == id {
				return true
			}
		}
	}
	for _, sc := range r.cfg.Streams {
		if sc.ID == id {
			return true
		}
	}
	return false
}
