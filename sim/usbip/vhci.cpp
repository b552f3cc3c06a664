#include "vhci.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <fstream>
#include <sstream>
#include <thread>

#include "rpiboot/core/error.hpp"
#include "rpiboot/core/unique_fd.hpp"

namespace usbip {
namespace fs = std::filesystem;
namespace {

std::string readText(const fs::path& path) {
    std::ifstream in(path);
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
}

// One write() of the whole text, as sysfs wants; returns errno or 0.
int writeSysfs(const fs::path& path, const std::string& text) {
    const rpiboot::UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CLOEXEC));
    if (!fd) {
        return errno;
    }
    const ssize_t n = ::write(fd.get(), text.data(), text.size());
    return n < 0 ? errno : 0;
}

bool isNumber(const std::string& s) {
    return !s.empty() &&
           std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

}  // namespace

std::vector<VhciPort> parseVhciStatus(const std::string& text, unsigned portsPerController) {
    std::vector<VhciPort> ports;
    std::istringstream lines(text);
    std::string line;
    while (std::getline(lines, line)) {
        std::istringstream words(line);
        std::vector<std::string> w;
        for (std::string word; words >> word;) {
            w.push_back(word);
        }
        std::optional<bool> hub;
        if (!w.empty() && (w[0] == "hs" || w[0] == "ss")) {
            hub = w[0] == "hs";
            w.erase(w.begin());
        }
        if (w.size() < 2 || !isNumber(w[0]) || !isNumber(w[1])) {
            continue;  // the header line
        }
        VhciPort p;
        p.port = static_cast<unsigned>(std::stoul(w[0]));
        p.state = std::stoi(w[1]);
        if (portsPerController > 0) {
            p.controller = p.port / portsPerController;
            p.rootPort = p.port % portsPerController;
            const unsigned half = portsPerController / 2;
            p.highSpeed = hub.value_or(p.rootPort < half);
            if (!p.highSpeed && p.rootPort >= half) {
                p.rootPort -= half;
            }
        }
        if (w.size() >= 6) {
            p.busId = w[5];
        } else if (w.size() >= 5) {
            p.busId = w[4];
        }
        ports.push_back(p);
    }
    return ports;
}

Vhci::Vhci(fs::path platformDir) : platformDir_(std::move(platformDir)) {
    const fs::path first = controllerDir(0);
    if (!fs::exists(first / "attach")) {
        throw rpiboot::Error(rpiboot::Errc::NotFound, "no USB/IP virtual host controller at " +
                                                          first.string() +
                                                          " (is the vhci-hcd module loaded?)");
    }
    const std::string nports = readText(first / "nports");
    const unsigned total = isNumber(nports.substr(0, nports.find('\n')))
                               ? static_cast<unsigned>(std::stoul(nports))
                               : 0;
    const unsigned controllers = controllerCount();
    if (total == 0 || controllers == 0 || total % controllers != 0) {
        throw rpiboot::Error(rpiboot::Errc::Io, "cannot tell the port count of the vhci-hcd at " +
                                                    first.string() + " (nports '" + nports + "')");
    }
    portsPerController_ = total / controllers;
}

fs::path Vhci::controllerDir(unsigned controller) const {
    return platformDir_ / ("vhci_hcd." + std::to_string(controller));
}

unsigned Vhci::controllerCount() const {
    unsigned n = 0;
    while (fs::exists(controllerDir(0) /
                      (n == 0 ? std::string("status") : "status." + std::to_string(n)))) {
        ++n;
    }
    return n;
}

std::vector<VhciPort> Vhci::ports() const {
    std::vector<VhciPort> all;
    const unsigned controllers = controllerCount();
    for (unsigned c = 0; c < controllers; ++c) {
        const auto file =
            controllerDir(0) / (c == 0 ? std::string("status") : "status." + std::to_string(c));
        auto some = parseVhciStatus(readText(file), portsPerController_);
        all.insert(all.end(), some.begin(), some.end());
    }
    return all;
}

std::optional<VhciPort> Vhci::port(unsigned number) const {
    const unsigned controller = portsPerController_ == 0 ? 0 : number / portsPerController_;
    const auto file = controllerDir(0) / (controller == 0 ? std::string("status")
                                                          : "status." + std::to_string(controller));
    for (const VhciPort& p : parseVhciStatus(readText(file), portsPerController_)) {
        if (p.port == number) {
            return p;
        }
    }
    return std::nullopt;
}

std::vector<unsigned> Vhci::freeHighSpeedPorts() const {
    std::vector<unsigned> free;
    for (const VhciPort& p : ports()) {
        if (p.highSpeed && p.state == kPortFree) {
            free.push_back(p.port);
        }
    }
    return free;
}

std::string Vhci::portPath(unsigned number) const {
    const auto p = port(number);
    if (!p) {
        throw rpiboot::Error(rpiboot::Errc::NotFound,
                             "vhci-hcd has no port " + std::to_string(number));
    }
    // The USB 2.0 root hub is the one whose speed is 480 Mb/s.
    const fs::path dir = controllerDir(p->controller);
    for (const auto& entry : fs::directory_iterator(dir)) {
        const std::string name = entry.path().filename().string();
        if (name.rfind("usb", 0) != 0 || !isNumber(name.substr(3))) {
            continue;
        }
        const std::string speed = readText(entry.path() / "speed");
        if ((speed.rfind("480", 0) == 0) == p->highSpeed) {
            return name.substr(3) + "-" + std::to_string(p->rootPort + 1);
        }
    }
    throw rpiboot::Error(rpiboot::Errc::NotFound, "cannot find the root hub of vhci-hcd port " +
                                                      std::to_string(number) + " under " +
                                                      dir.string());
}

void Vhci::attach(unsigned port, int socketFd, std::uint32_t devid, unsigned speed) const {
    const std::string line = std::to_string(port) + " " + std::to_string(socketFd) + " " +
                             std::to_string(devid) + " " + std::to_string(speed);
    if (const int err = writeSysfs(controllerDir(0) / "attach", line); err != 0) {
        throw rpiboot::Error(rpiboot::Errc::Io, "vhci-hcd refused to attach a device on port " +
                                                    std::to_string(port) + " ('" + line +
                                                    "'): " + rpiboot::errnoText(err));
    }
}

bool Vhci::detach(unsigned port) const {
    return writeSysfs(controllerDir(0) / "detach", std::to_string(port)) == 0;
}

bool Vhci::waitUntilFree(unsigned port, std::chrono::milliseconds timeout) const {
    // The kernel offers no event for "port free again", so this looks: at
    // first every millisecond (a detach takes a few), then less often.
    const auto until = std::chrono::steady_clock::now() + timeout;
    auto pause = std::chrono::milliseconds(1);
    for (;;) {
        const auto p = this->port(port);
        if (p && p->state == kPortFree) {
            return true;
        }
        if (std::chrono::steady_clock::now() >= until) {
            return false;
        }
        std::this_thread::sleep_for(pause);
        pause = std::min(pause * 2, std::chrono::milliseconds(50));
    }
}

}  // namespace usbip
