// SPDX-License-Identifier: GPL-2.0-or-later
// The benchmark's measuring and reporting: a monotonic clock, latency samples with their median
// and p99, interleaved measurement of an operation and its baseline, and the one table a run
// prints.
//
// Interleaving: the machines these numbers come from drift by ~30% between runs (a shared VM),
// so an operation and its baseline are measured in alternating blocks within one run, and only
// their ratio is meant to be compared across runs.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace bpffs::bench {

// Nanoseconds on CLOCK_MONOTONIC.
std::int64_t now_ns();

// Latency samples in nanoseconds.
class Samples {
public:
    void add(std::int64_t ns) { v_.push_back(ns); }
    void append(const Samples& o) { v_.insert(v_.end(), o.v_.begin(), o.v_.end()); }
    std::size_t size() const { return v_.size(); }
    bool empty() const { return v_.empty(); }
    // The q-quantile (0..1) by nearest rank; 0 when empty.
    double quantile(double q) const;
    double median() const { return quantile(0.5); }
    double p99() const { return quantile(0.99); }
    const std::vector<std::int64_t>& raw() const { return v_; }

private:
    std::vector<std::int64_t> v_;
};

// One measured step. It returns 0 or a positive errno; any error fails the run (the benchmark
// doubles as a smoke test: an operation that stopped working must not print a latency).
using Step = std::function<int(std::uint64_t i)>;

// Runs `warmup` unmeasured steps, then `iterations` timed ones. Throws std::runtime_error naming
// `what` on the first step that fails.
Samples measure(const std::string& what, const Step& step, std::uint64_t iterations,
                std::uint64_t warmup);

// Measures several steps over `iterations` each, interleaved in blocks of `block` steps
// (AAA BBB CCC AAA ...) so that drift and bursts of load from other processes hit them alike.
// Each step sees its own running index i = 0, 1, 2, ...
std::vector<Samples> measure_interleaved(const std::vector<std::pair<std::string, Step>>& steps,
                                         std::uint64_t iterations, std::uint64_t warmup,
                                         std::uint64_t block = 10);

// "12.3 µs", "4.56 ms", "1.23 s".
std::string fmt_duration(double ns);
// prefix followed by n in decimal ("o42").
std::string numbered(const char* prefix, std::uint64_t n);
// "1,000,000".
std::string fmt_count(std::uint64_t n);
// "123k/s", "1.23M/s".
std::string fmt_rate(double per_sec);
std::string fmt_ratio(double r);
std::string fmt_bytes(double bytes);

// Targets: ratio <= limit, ratio >= limit, or none (reported for information).
struct Target {
    enum class Kind { none, at_most, at_least } kind = Kind::none;
    double limit = 0;
    static Target at_most(double x) { return {Kind::at_most, x}; }
    static Target at_least(double x) { return {Kind::at_least, x}; }
    std::string text() const;
    std::optional<bool> met(double ratio) const;
};

// The table: operation | ours median | ours p99 | baseline | baseline median | ratio | target |
// met?. Cells are preformatted text; print() writes a Markdown table to stdout.
class Table {
public:
    struct Row {
        std::string op, ours_median, ours_p99, baseline, baseline_median, ratio, target, met;
    };
    explicit Table(std::string title) : title_(std::move(title)) {}
    // A latency row: ratio = ours median / baseline median.
    void latency(const std::string& op, const Samples& ours, const std::string& baseline,
                 const Samples& base, Target t);
    // A throughput row: ratio = ours / baseline; the p99 column holds ours' p99 latency.
    void throughput(const std::string& op, double ours_per_sec, double ours_p99_ns,
                    const std::string& baseline, double base_per_sec, Target t);
    // A throughput row without latencies (a rate derived from others, e.g. per CPU).
    void rate(const std::string& op, double ours_per_sec, const std::string& baseline,
              double base_per_sec, Target t);
    void note(const std::string& op, const std::string& text);  // a row with only a remark
    void add(Row r) { rows_.push_back(std::move(r)); }
    void print() const;
    // Rows whose target was not met.
    std::vector<std::string> missed() const;
    // print(), then "Targets missed: N" and a line for each: what a run ends with.
    void print_report() const;

private:
    std::string title_;
    std::vector<Row> rows_;
};

}  // namespace bpffs::bench
