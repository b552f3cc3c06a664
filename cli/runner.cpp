#include "runner.hpp"

#include <filesystem>
#include <iostream>
#include <vector>

#include "rpiboot/boot/boot.hpp"
#include "rpiboot/core/error.hpp"
#include "rpiboot/core/metadata.hpp"
#include "rpiboot/firmware/embedded_firmware.hpp"
#include "rpiboot/firmware/file_cache.hpp"

namespace rpiboot::cli {
namespace {

namespace fs = std::filesystem;

// Prints what upstream prints, so scripts that read its output keep working
// (docs/protocol.md §13.3).
class CliObserver final : public BootObserver {
  public:
    CliObserver(std::ostream& out, std::ostream& err, int verbosity)
        : out_(out), err_(err), verbosity_(verbosity) {}

    void onFileLookup(std::string_view name, bool found, std::uint64_t size,
                      std::string_view originOrRefusal) override {
        if (!found) {
            out_ << "Cannot open file " << name;
            if (!originOrRefusal.empty()) {
                out_ << " (" << originOrRefusal << ")";
            }
            out_ << "\n";
            return;
        }
        out_ << "Loading: " << originOrRefusal << "\n";
        if (verbosity_ > 0 || size == 0) {
            out_ << "File size = " << size << " bytes\n";
        }
    }
    void onTransferFinished(std::string_view name, std::uint64_t /*size*/) override {
        if (name != "bootcode") {
            out_ << "File read: " << name << "\n";
        }
    }
    void onLog(LogLevel level, std::string_view message) override {
        if (level == LogLevel::Error || level == LogLevel::Warning) {
            err_ << message << "\n";
        } else if (verbosity_ >= 2 || (verbosity_ >= 1 && level == LogLevel::Info)) {
            out_ << message << "\n";
        }
    }

  private:
    std::ostream& out_;
    std::ostream& err_;
    int verbosity_;
};

bool hasBootFiles(const fs::path& dir) {
    std::error_code ec;
    if (fs::is_regular_file(dir / "bootfiles.bin", ec)) {
        return true;
    }
    for (const char* sub : {"", "2710", "2711", "2712"}) {
        for (const char* name : {"bootcode.bin", "bootcode4.bin", "bootcode5.bin"}) {
            if (fs::is_regular_file(dir / sub / name, ec)) {
                return true;
            }
        }
    }
    return false;
}

}  // namespace

Runner::Runner(Options options, std::string defaultFirmwareDir, DeviceWaiter& waiter,
               std::ostream& out, std::ostream& err)
    : options_(std::move(options)),
      defaultFirmwareDir_(std::move(defaultFirmwareDir)),
      waiter_(waiter),
      out_(out),
      err_(err),
      cache_(std::make_shared<FileCache>()) {}

Runner::~Runner() = default;

std::string Runner::checkDirectory() const {
    if (options_.directory.empty()) {
        return {};
    }
    const fs::path dir(options_.directory);
    std::error_code ec;
    if (!fs::is_directory(dir, ec)) {
        return "'" + options_.directory + "' is not a directory";
    }
    // Unlike upstream, every chip folder counts: a directory holding only
    // 2711/bootcode4.bin is a valid boot set.
    if (!hasBootFiles(dir)) {
        return "No 'bootcode' files found in '" + options_.directory + "'";
    }
    if (options_.signedBoot && !fs::is_regular_file(dir / "bootcode.sig", ec) &&
        !fs::is_regular_file(dir / "2710" / "bootcode.sig", ec)) {
        return "-s needs bootcode.sig in '" + options_.directory + "'";
    }
    return {};
}

namespace {

// Without -d: the sets of the installed base a board of `chip` is served
// from, in order (docs/protocol.md §6.7). First the set for what the board
// becomes: mass-storage-gadget64 for BCM2711/2712 when installed, else msd
// (BCM2835 family, BCM2711; BCM2712 has no msd firmware). Then the base
// itself, whose bootfiles.bin (or chip folders) holds every chip's
// loader (2711/bootcode4.bin, 2712/bootcode5.bin). Sets are not mixed: a
// gadget board never gets msd's files. Empty when nothing is installed:
// then only the embedded firmware answers.
std::vector<fs::path> defaultRoots(const fs::path& base, Chip chip) {
    std::vector<fs::path> roots;
    std::error_code ec;
    const bool gadgetChip = chip == Chip::Bcm2711 || chip == Chip::Bcm2712;
    if (gadgetChip && fs::is_directory(base / "mass-storage-gadget64", ec)) {
        roots.push_back(base / "mass-storage-gadget64");
    } else if (chip != Chip::Bcm2712 && fs::is_directory(base / "msd", ec)) {
        roots.push_back(base / "msd");
    }
    if (hasBootFiles(base)) {
        roots.push_back(base);
    }
    return roots;
}

}  // namespace

const FirmwareSet& Runner::firmwareFor(Chip chip) {
    const bool installed = options_.directory.empty();
    std::vector<fs::path> roots;
    if (installed) {
        roots = defaultRoots(defaultFirmwareDir_, chip);
    } else {
        roots.emplace_back(options_.directory);
    }
    // `roots` lists every directory, in order; without -d the embedded
    // firmware answers after all of them (and alone when nothing is installed).
    std::string key;
    for (const auto& root : roots) {
        key += root.string() + "\n";
    }
    auto it = sets_.find(key);
    if (it == sets_.end()) {
        FirmwareSetConfig config;
        if (!roots.empty()) {
            config.root = roots.front();
            config.fallbackRoots.assign(roots.begin() + 1, roots.end());
        }
        config.portOverlays = options_.portOverlays;
        // Without -d the compiled-in set is the last resort (embedded_firmware.hpp).
        config.embedded = installed;
        if (installed && roots.empty()) {
            out_ << "Directory not specified and no firmware installed in " << defaultFirmwareDir_
                 << " - using the embedded firmware (" << embeddedFirmwareNames() << ")\n";
        } else if (installed) {
            out_ << "Directory not specified - trying default " << roots.front().string() << "\n";
        }
        // Sets shipped side by side may link to each other: upstream's
        // msd/bootcode4.bin points at ../firmware/2711/bootcode4.bin.
        if (!roots.empty()) {
            config.trustedRoots.push_back(installed ? fs::path(defaultFirmwareDir_)
                                                    : roots.front().parent_path());
        }
        it = sets_.emplace(key, std::make_unique<FirmwareSet>(std::move(config), cache_)).first;
    }
    return *it->second;
}

bool Runner::accepts(const CandidateDevice& device, const std::string& serial) const {
    if (options_.portNumber && device.info.portNumber != *options_.portNumber) {
        return false;
    }
    if (!options_.portPath.empty() && device.info.portPath != options_.portPath) {
        return false;
    }
    if (!options_.serial.empty() && serial != options_.serial) {
        // The second stage of a board we selected by its ROM serial comes
        // back on the same port.
        return !trackedPort_.empty() && device.info.portPath == trackedPort_;
    }
    return true;
}

bool Runner::serveDevice(const CandidateDevice& device, bool& secondStageCompleted) {
    auto identity = identifyDevice(device.info.descriptor);
    if (!identity) {
        return true;
    }
    std::unique_ptr<OpenedDevice> opened;
    std::string serial;
    try {
        opened = device.open();
        serial = opened->serialString();
    } catch (const Error& e) {
        if (e.code() == Errc::Refused) {
            err_ << "Permission to access USB device denied. Make sure you are a member of the "
                    "rpiboot group that rpibootd's udev rules give access (or run as root).\n";
            throw;
        }
        if (e.code() == Errc::DeviceGone || e.code() == Errc::NotFound) {
            // Announced twice, or already re-enumerating: its next
            // enumeration will arrive as a new device.
            return true;
        }
        err_ << "Cannot open device at " << device.info.portPath << ": " << e.what() << "\n";
        return false;
    }
    if (!accepts(device, serial)) {
        return true;
    }
    if (options_.verbosity > 0) {
        out_ << "Found serial number " << int{device.info.descriptor.serialNumberIndex} << "\n";
        out_ << "Device at " << device.info.portPath << " (" << chipName(identity->chip) << ", "
             << stageName(identity->stage) << ")\n";
    }
    try {
        opened->claim(identity->interface);
    } catch (const Error& e) {
        if (e.code() == Errc::DeviceGone || e.code() == Errc::NotFound) {
            // Opened in the moment it left the bus (a ROM that just took its
            // bootcode, announced once more): as when the open itself fails.
            if (options_.verbosity > 0) {
                out_ << "Device at " << device.info.portPath << " left before it was claimed\n";
            }
            return true;
        }
        throw;
    }
    BoardContext board{identity->chip, device.info.portPath, serial};
    CliObserver observer(out_, err_, options_.verbosity);
    BootOptions bootOptions;
    bootOptions.signedBoot = options_.signedBoot;
    if (options_.bulkTransfersInFlight) {
        bootOptions.bulkTransfersInFlight = *options_.bulkTransfersInFlight;
    }
    const FirmwareSet& firmware = firmwareFor(identity->chip);
    if (identity->stage == BootStage::Rom) {
        out_ << "Sending " << bootcodeFileName(identity->chip) << "\n";
        try {
            runBootStage(opened->transport(), *identity, firmware, board, bootOptions, &observer);
        } catch (const Error& e) {
            err_ << "Failed : " << e.what() << "\n";
            return false;
        }
        out_ << "Successful read 4 bytes \n";
        if (!options_.serial.empty()) {
            trackedPort_ = device.info.portPath;
        }
        return true;
    }
    out_ << "Second stage boot server\n";
    StageOutcome outcome;
    try {
        outcome =
            runBootStage(opened->transport(), *identity, firmware, board, bootOptions, &observer);
    } catch (const Error& e) {
        err_ << "Second stage boot server failed: " << e.what() << "\n";
        return false;
    }
    const FileServerResult& files = *outcome.files;
    if (!files.metadata.empty()) {
        if (options_.metadataToFile) {
            const fs::path written =
                writeMetadataFile(options_.metadataDir, serial, files.metadata);
            out_ << "Created metadata file: " << written.string() << "\n";
        } else {
            out_ << renderMetadataJson(files.metadata);
        }
    }
    out_ << "Second stage boot server done\n";
    secondStageCompleted = true;
    trackedPort_.clear();
    return true;
}

int Runner::run() {
    bool failed = false;
    while (true) {
        out_ << "Waiting for BCM2835/6/7/2711/2712...\n";
        bool completed = false;
        while (!completed) {
            std::optional<CandidateDevice> device = waiter_.next();
            if (!device) {
                return failed ? 1 : 0;
            }
            bool ok = true;
            try {
                ok = serveDevice(*device, completed);
            } catch (const Error& e) {
                err_ << e.what() << "\n";
                return 1;
            }
            if (!ok) {
                failed = true;
                if (!options_.loop) {
                    return 1;
                }
            }
        }
        if (!options_.loop) {
            return failed ? 1 : 0;
        }
    }
}

}  // namespace rpiboot::cli
