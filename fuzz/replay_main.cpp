// SPDX-License-Identifier: GPL-2.0-or-later
// A main() for a harness without libFuzzer (gcc builds, the sanitizer builds of CI): runs each
// file named on the command line, and each file of each directory named (in name order), once
// through LLVMFuzzerTestOneInput. ctest runs it over fuzz/corpus/<harness>/, so every build
// replays the seeds and the inputs of past findings. An invariant that fails aborts.
#include "fuzz/fuzz_check.hpp"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <vector>

namespace fs = std::filesystem;

namespace {

std::vector<fs::path> inputs_of(const fs::path& p) {
    std::vector<fs::path> out;
    if (!fs::is_directory(p)) return {p};
    for (const auto& e : fs::directory_iterator(p)) {
        if (e.is_regular_file()) out.push_back(e.path());
    }
    std::sort(out.begin(), out.end());
    return out;
}

}  // namespace

int main(int argc, char** argv) {
    std::size_t ran = 0;
    for (int i = 1; i < argc; ++i) {
        for (const fs::path& f : inputs_of(argv[i])) {
            std::ifstream in(f, std::ios::binary);
            if (!in) {
                std::cerr << "replay: cannot read " << f << "\n";
                return 1;
            }
            std::vector<std::uint8_t> bytes((std::istreambuf_iterator<char>(in)),
                                            std::istreambuf_iterator<char>());
            std::cerr << "replay: " << f.filename().string() << " (" << bytes.size() << " bytes)\n";
            LLVMFuzzerTestOneInput(bytes.data(), bytes.size());
            ++ran;
        }
    }
    if (ran == 0) {
        std::cerr << "replay: no inputs\n";
        return 1;
    }
    std::cout << "replay: " << ran << " inputs ran, every invariant held\n";
    return 0;
}
