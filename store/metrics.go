package store

import "github.com/prometheus/client_golang/prometheus"

// RegisterMetrics registers gauges of the file, read at scrape time, on reg.
func (d *DB) RegisterMetrics(reg prometheus.Registerer) {
	stat := func(f func(Stats) float64) func() float64 {
		return func() float64 {
			s, err := d.Stats()
			if err != nil {
				return -1
			}
			return f(s)
		}
	}
	gauge := func(name, help string, f func(Stats) float64) {
		reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, stat(f)))
	}
	gauge("canopy_bbolt_file_bytes", "Size of the bbolt file.", func(s Stats) float64 { return float64(s.FileBytes) })
	gauge("canopy_bbolt_read_tx_open", "Read transactions open now.", func(s Stats) float64 { return float64(s.TxOpen) })
	gauge("canopy_bbolt_free_pages", "Pages on bbolt's freelist.", func(s Stats) float64 { return float64(s.FreePages) })
	reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "canopy_bbolt_read_tx_total", Help: "Read transactions started since the file was opened.",
	}, stat(func(s Stats) float64 { return float64(s.TxStarted) })))
}
