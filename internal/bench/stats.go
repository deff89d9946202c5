package bench

import (
	"slices"
	"time"
)

// percentile returns the p-th percentile (0-100) of ds, nearest rank.
func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(p/100*float64(len(s))+0.5) - 1
	return s[max(0, min(i, len(s)-1))]
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// Spread is a ratio's minimum, median and maximum over rounds.
type Spread struct {
	Min    float64 `json:"min"`
	Median float64 `json:"median"`
	Max    float64 `json:"max"`
	Rounds int     `json:"rounds"`
}

// spreadOf is the spread of gw[i]/base[i] over the rounds both have.
func spreadOf(gw, base []float64) *Spread {
	var r []float64
	for i := range min(len(gw), len(base)) {
		if base[i] != 0 {
			r = append(r, gw[i]/base[i])
		}
	}
	if len(r) == 0 {
		return nil
	}
	return &Spread{Min: slices.Min(r), Median: median(r), Max: slices.Max(r), Rounds: len(r)}
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 0 {
		return (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	return s[len(s)/2]
}
