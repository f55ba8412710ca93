// SPDX-License-Identifier: GPL-2.0-or-later
// bpffsctl ls: what a directory of a bpffs-fuse mount holds. Names come from readdir and
// lstat (the kernel asks the daemon, no broker involved); what each object is comes from its
// bpf.type xattr, and with -l or --json from the kernel, through a get of each object (which
// needs what a get needs: write permission under compat=seed). An object that cannot be fetched
// is listed with the reason instead of its facts.
#include "client/bpffsctl_commands.hpp"
#include "client/bpffsctl_explain.hpp"
#include "client/bpffsctl_fields.hpp"

#include "bpffs/bpffs.h"
#include "common/socket_name.hpp"
#include "common/unique_fd.hpp"

#include <dirent.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

namespace bpffs::ctl {
namespace {

// One entry: its path relative to what was listed, and what ls shows of it.
struct Entry {
    std::string rel;
    struct stat st {};
    std::string kind;    // dir, map, prog, link, symlink; object (of a kind the caller may not
                         // read), other
    std::string target;  // a symlink's
    std::vector<Field> facts;
    std::string why_not;  // the facts could not be had: why
};

std::string kind_of(const std::string& path, const struct stat& st) {
    if (S_ISDIR(st.st_mode)) return "dir";
    if (S_ISLNK(st.st_mode)) return "symlink";
    char buf[16] = {};
    ssize_t n = lgetxattr(path.c_str(), "bpf.type", buf, sizeof buf - 1);
    // An object whose bpf.type the caller may not read (getxattr asks for read permission).
    if (n <= 0) return S_ISREG(st.st_mode) ? "object" : "other";
    std::string v(buf, static_cast<std::size_t>(n));
    while (!v.empty() && v.back() == '\0') v.pop_back();  // the value may carry its NUL
    return v;
}

std::string mode_text(mode_t m) {
    std::string s = S_ISDIR(m) ? "d" : S_ISLNK(m) ? "l" : "-";
    const char* rwx = "rwxrwxrwx";
    for (int i = 0; i < 9; ++i) s += (m & (0400 >> i)) ? rwx[i] : '-';
    return s;
}

// The names in directory `dir`, sorted; "." and ".." and the broker's socket left out.
Result<std::vector<std::string>> names_in(const std::string& dir) {
    DIR* d = opendir(dir.c_str());
    if (d == nullptr) return fail(errno);
    std::vector<std::string> names;
    while (dirent* e = readdir(d)) {
        std::string n = e->d_name;
        if (n != "." && n != ".." && n != kSocketName) names.push_back(std::move(n));
    }
    closedir(d);
    std::sort(names.begin(), names.end());
    return names;
}

class Lister {
public:
    explicit Lister(const LsOptions& o) : o_(o) {}

    // Adds `path` (shown as `rel`), and with -R what a directory holds.
    void add(const std::string& path, const std::string& rel) {
        Entry e;
        e.rel = rel;
        if (lstat(path.c_str(), &e.st) != 0) {
            e.kind = "other";
            e.why_not = std::strerror(errno);
            entries_.push_back(std::move(e));
            return;
        }
        e.kind = kind_of(path, e.st);
        if (e.kind == "symlink") {
            char buf[4096];
            ssize_t n = readlink(path.c_str(), buf, sizeof buf);
            if (n > 0) e.target.assign(buf, static_cast<std::size_t>(n));
        }
        bool object = e.kind == "map" || e.kind == "prog" || e.kind == "link" || e.kind == "object";
        if ((o_.long_format || o_.json) && object) fetch(path, e);
        bool descend = e.kind == "dir" && o_.recursive;
        entries_.push_back(std::move(e));
        if (descend) add_children(path, rel);
    }

    // What directory `path` holds, shown under `rel`.
    int add_children(const std::string& path, const std::string& rel) {
        auto names = names_in(path);
        if (!names) {
            std::fprintf(stderr, "bpffsctl: error: ls %s: %s\n", path.c_str(),
                         std::strerror(names.error().value));
            failed_ = true;
            return names.error().value;
        }
        for (const auto& n : *names) add(path + "/" + n, rel.empty() ? n : rel + "/" + n);
        return 0;
    }

    int print() const {
        if (o_.json) {
            nlohmann::ordered_json all = nlohmann::ordered_json::array();
            for (const Entry& e : entries_) all.push_back(json_of(e));
            std::printf("%s\n",
                        all.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
        } else {
            for (const Entry& e : entries_) std::printf("%s\n", line_of(e).c_str());
        }
        return failed_ ? kExitFailure : kExitOk;
    }

private:
    void fetch(const std::string& path, Entry& e) const {
        bpffs_opts opts{};
        opts.sz = sizeof opts;
        opts.trust_uid = o_.trust_uid;
        UniqueFd fd(bpffs_obj_get_opts(path.c_str(), &opts));
        if (!fd) {
            e.why_not = std::strerror(errno);
            return;
        }
        auto facts = object_fields(fd.get());
        if (facts)
            e.facts = std::move(*facts);
        else
            e.why_not = std::strerror(facts.error().value);
    }

    nlohmann::ordered_json json_of(const Entry& e) const {
        nlohmann::ordered_json j = nlohmann::ordered_json::object();
        j["path"] = e.rel;
        j["kind"] = e.kind;
        char mode[8];
        std::snprintf(mode, sizeof mode, "%04o", e.st.st_mode & 07777);
        j["mode"] = mode;
        j["uid"] = e.st.st_uid;
        j["gid"] = e.st.st_gid;
        if (!e.target.empty()) j["target"] = e.target;
        if (!e.facts.empty()) {
            nlohmann::ordered_json facts = to_json(e.facts);
            facts.erase("type");  // the kind says it
            j["object"] = std::move(facts);
        }
        if (!e.why_not.empty()) j["error"] = e.why_not;
        return j;
    }

    std::string line_of(const Entry& e) const {
        std::string name = e.rel + (e.kind == "dir" ? "/" : "");
        if (!e.target.empty()) name += " -> " + e.target;
        if (!o_.long_format) return name;
        char head[96];
        std::snprintf(head, sizeof head, "%s %5u %5u %-7s ", mode_text(e.st.st_mode).c_str(),
                      e.st.st_uid, e.st.st_gid, e.kind.c_str());
        std::string line = head;
        std::string facts;
        for (const Field& f : e.facts) {
            if (f.key == "type") continue;
            if (f.key == "id") {
                line += f.value.dump() + " ";
                continue;
            }
            facts += (facts.empty() ? "" : " ") + f.key + "=" +
                     (f.value.is_string() ? f.value.get<std::string>() : f.value.dump());
        }
        if (e.facts.empty()) line += "- ";
        line += name;
        if (!facts.empty()) line += "  (" + facts + ")";
        if (!e.why_not.empty()) line += "  (" + e.why_not + ")";
        return line;
    }

    const LsOptions& o_;
    std::vector<Entry> entries_;
    bool failed_ = false;
};

}  // namespace

int run_ls(const LsOptions& o) {
    if (where_is(o.path, false) != Where::bpffs_fuse) {
        std::string why = explain(Verb::get, o.path, ENOENT);
        std::fprintf(stderr, "bpffsctl: error: ls %s: %s\n", o.path.c_str(),
                     why.empty() ? std::strerror(ENOENT) : why.c_str());
        return kExitFailure;
    }
    Lister l(o);
    struct stat st {};
    if (lstat(o.path.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) {
        l.add_children(o.path, "");
    } else {
        l.add(o.path, o.path);
    }
    return l.print();
}

}  // namespace bpffs::ctl
