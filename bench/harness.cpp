// SPDX-License-Identifier: GPL-2.0-or-later
// Timing and reporting: samples, medians, ratios against a baseline of the same run.
#include "bench/harness.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <initializer_list>
#include <stdexcept>

namespace bpffs::bench {

std::int64_t now_ns() {
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<std::int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

double Samples::quantile(double q) const {
    if (v_.empty()) return 0;
    std::vector<std::int64_t> s = v_;
    auto rank = static_cast<std::size_t>(std::ceil(q * static_cast<double>(s.size())));
    rank = std::clamp<std::size_t>(rank, 1, s.size()) - 1;
    std::nth_element(s.begin(), s.begin() + static_cast<std::ptrdiff_t>(rank), s.end());
    return static_cast<double>(s[rank]);
}

namespace {

[[noreturn]] void step_failed(const std::string& what, int e) {
    throw std::runtime_error(what + ": " + std::strerror(e));
}

}  // namespace

Samples measure(const std::string& what, const Step& step, std::uint64_t iterations,
                std::uint64_t warmup) {
    auto r = measure_interleaved({{what, step}}, iterations, warmup, iterations);
    return r.front();
}

std::vector<Samples> measure_interleaved(const std::vector<std::pair<std::string, Step>>& steps,
                                         std::uint64_t iterations, std::uint64_t warmup,
                                         std::uint64_t block) {
    std::vector<Samples> out(steps.size());
    std::vector<std::uint64_t> next(steps.size(), 0);
    for (std::size_t k = 0; k < steps.size(); ++k) {
        for (std::uint64_t w = 0; w < warmup; ++w) {
            if (int e = steps[k].second(next[k]++); e != 0) step_failed(steps[k].first, e);
        }
    }
    if (block == 0) block = 1;
    for (std::uint64_t done = 0; done < iterations; done += block) {
        std::uint64_t n = std::min(block, iterations - done);
        for (std::size_t k = 0; k < steps.size(); ++k) {
            for (std::uint64_t j = 0; j < n; ++j) {
                std::int64_t t0 = now_ns();
                int e = steps[k].second(next[k]++);
                std::int64_t t1 = now_ns();
                if (e != 0) step_failed(steps[k].first, e);
                out[k].add(t1 - t0);
            }
        }
    }
    return out;
}

namespace {

// One unit of a scale: values from `from` up are printed divided by `div` with `fmt`.
struct Unit {
    double from, div;
    const char* fmt;
};

// v in the first of `units` (the largest first) that it reaches; in the last one otherwise.
std::string fmt_units(double v, std::initializer_list<Unit> units) {
    const Unit* u = nullptr;
    for (const Unit& x : units) {
        u = &x;
        if (v >= x.from) break;
    }
    char buf[32];
    std::snprintf(buf, sizeof buf, u->fmt, v / u->div);
    return buf;
}

}  // namespace

std::string fmt_duration(double ns) {
    return fmt_units(ns, {{1e9, 1e9, "%.2f s"}, {1e6, 1e6, "%.2f ms"}, {0, 1e3, "%.1f µs"}});
}

std::string numbered(const char* prefix, std::uint64_t n) {
    std::string s(prefix);
    s += std::to_string(n);
    return s;
}

std::string fmt_count(std::uint64_t n) {
    std::string digits = std::to_string(n), out;
    for (std::size_t i = 0; i < digits.size(); ++i) {
        if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
        out += digits[i];
    }
    return out;
}

std::string fmt_rate(double per_sec) {
    return fmt_units(per_sec, {{1e6, 1e6, "%.2fM/s"}, {1e3, 1e3, "%.1fk/s"}, {0, 1, "%.0f/s"}});
}

std::string fmt_ratio(double r) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.2fx", r);
    return buf;
}

std::string fmt_bytes(double bytes) {
    return fmt_units(
        bytes,
        {{1048576.0, 1048576.0, "%.1f MiB"}, {1024.0, 1024.0, "%.1f KiB"}, {0, 1, "%.0f B"}});
}

std::string Target::text() const {
    char buf[32];
    switch (kind) {
        case Kind::none:
            return "info";
        case Kind::at_most:
            std::snprintf(buf, sizeof buf, "<= %.2gx", limit);
            return buf;
        case Kind::at_least:
            std::snprintf(buf, sizeof buf, ">= %.2gx", limit);
            return buf;
    }
    return "";
}

std::optional<bool> Target::met(double ratio) const {
    switch (kind) {
        case Kind::none:
            return std::nullopt;
        case Kind::at_most:
            return ratio <= limit;
        case Kind::at_least:
            return ratio >= limit;
    }
    return std::nullopt;
}

namespace {
std::string met_text(std::optional<bool> m) {
    if (!m) return "";
    return *m ? "yes" : "**no**";
}
}  // namespace

void Table::latency(const std::string& op, const Samples& ours, const std::string& baseline,
                    const Samples& base, Target t) {
    double ratio = base.median() > 0 ? ours.median() / base.median() : 0;
    rows_.push_back({op, fmt_duration(ours.median()), fmt_duration(ours.p99()), baseline,
                     fmt_duration(base.median()), fmt_ratio(ratio), t.text(),
                     met_text(t.met(ratio))});
}

void Table::throughput(const std::string& op, double ours_per_sec, double ours_p99_ns,
                       const std::string& baseline, double base_per_sec, Target t) {
    double ratio = base_per_sec > 0 ? ours_per_sec / base_per_sec : 0;
    rows_.push_back({op, fmt_rate(ours_per_sec), fmt_duration(ours_p99_ns), baseline,
                     fmt_rate(base_per_sec), fmt_ratio(ratio), t.text(), met_text(t.met(ratio))});
}

void Table::rate(const std::string& op, double ours_per_sec, const std::string& baseline,
                 double base_per_sec, Target t) {
    throughput(op, ours_per_sec, 0, baseline, base_per_sec, t);
    rows_.back().ours_p99 = "";
}

void Table::note(const std::string& op, const std::string& text) {
    rows_.push_back({op, "", "", text, "", "", "", ""});
}

void Table::print() const {
    const char* head[] = {"operation",       "ours median", "ours p99", "baseline",
                          "baseline median", "ratio",       "target",   "met?"};
    std::vector<std::size_t> w(8);
    auto cells = [](const Row& r) {
        return std::vector<const std::string*>{
            &r.op,    &r.ours_median, &r.ours_p99, &r.baseline, &r.baseline_median,
            &r.ratio, &r.target,      &r.met};
    };
    // Display width: count UTF-8 code points, not bytes ("µ" is two bytes).
    auto width = [](const std::string& s) {
        std::size_t n = 0;
        for (unsigned char c : s) n += (c & 0xC0) != 0x80;
        return n;
    };
    for (std::size_t i = 0; i < 8; ++i) w[i] = std::strlen(head[i]);
    for (const auto& r : rows_) {
        auto c = cells(r);
        for (std::size_t i = 0; i < 8; ++i) w[i] = std::max(w[i], width(*c[i]));
    }
    auto line = [&](const std::vector<std::string>& c) {
        std::string s = "|";
        for (std::size_t i = 0; i < 8; ++i) {
            s += " " + c[i] + std::string(w[i] - width(c[i]), ' ') + " |";
        }
        std::puts(s.c_str());
    };
    std::printf("\n%s\n\n", title_.c_str());
    line({head[0], head[1], head[2], head[3], head[4], head[5], head[6], head[7]});
    std::vector<std::string> sep;
    for (std::size_t i = 0; i < 8; ++i) sep.push_back(std::string(w[i], '-'));
    line(sep);
    for (const auto& r : rows_) {
        line({r.op, r.ours_median, r.ours_p99, r.baseline, r.baseline_median, r.ratio, r.target,
              r.met});
    }
    std::fflush(stdout);
}

std::vector<std::string> Table::missed() const {
    std::vector<std::string> out;
    for (const auto& r : rows_) {
        if (r.met == "**no**") out.push_back(r.op + " vs " + r.baseline);
    }
    return out;
}

void Table::print_report() const {
    print();
    auto m = missed();
    std::printf("\nTargets missed: %zu%s\n", m.size(), m.empty() ? "" : ":");
    for (const auto& x : m) std::printf("  - %s\n", x.c_str());
}

}  // namespace bpffs::bench
