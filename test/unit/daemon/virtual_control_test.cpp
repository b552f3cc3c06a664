// rpibootd --virtual-control: the socket protocol, from a client's side of a
// real Unix socket, with the daemon's event loop and virtual source running
// on their own thread.
#include "virtual/virtual_control.hpp"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <fstream>
#include <future>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>
#include <vector>

#include "event_loop.hpp"
#include "journal.hpp"
#include "rpiboot/core/error.hpp"
#include "rpiboot_test/daemon_process.hpp"
#include "rpiboot_test/scratch_dir.hpp"
#include "virtual/virtual_source.hpp"

namespace rpibootd {
namespace {

namespace fs = std::filesystem;

// What the source reported, as the registry would have seen it.
class RecordingEvents final : public DeviceEvents {
  public:
    void deviceAdded(const DeviceInfo& device) override {
        std::lock_guard lock(mutex_);
        added_.push_back(device.port);
    }
    void deviceRemoved(const std::string& id) override {
        std::lock_guard lock(mutex_);
        removed_.push_back(id);
    }
    std::vector<std::string> added() const {
        std::lock_guard lock(mutex_);
        return added_;
    }
    std::size_t removedCount() const {
        std::lock_guard lock(mutex_);
        return removed_.size();
    }

  private:
    mutable std::mutex mutex_;
    std::vector<std::string> added_;
    std::vector<std::string> removed_;
};

// The loop, source and control on a thread of their own, as in the daemon.
class ControlThread {
  public:
    explicit ControlThread(const fs::path& socket) : log_(LogTargets{false, false, 0}) {
        std::promise<void> ready;
        auto started = ready.get_future();
        thread_ = std::thread([this, socket, &ready] {
            try {
                EventLoop loop;
                VirtualSource source(loop, log_, {});
                source.start(events_);
                VirtualControl control(loop, log_, source, socket);
                {
                    std::lock_guard lock(mutex_);
                    loop_ = &loop;
                }
                ready.set_value();
                loop.run();
                std::lock_guard lock(mutex_);
                loop_ = nullptr;
            } catch (...) {
                ready.set_exception(std::current_exception());
            }
        });
        try {
            started.get();
        } catch (...) {
            thread_.join();
            throw;
        }
    }
    ~ControlThread() {
        {
            std::lock_guard lock(mutex_);
            if (loop_ != nullptr) {
                loop_->post([loop = loop_] { loop->exit(0); });
            }
        }
        thread_.join();
    }
    ControlThread(const ControlThread&) = delete;
    ControlThread& operator=(const ControlThread&) = delete;

    const RecordingEvents& events() const { return events_; }

  private:
    Logger log_;
    RecordingEvents events_;
    std::mutex mutex_;
    EventLoop* loop_ = nullptr;
    std::thread thread_;
};

// A client of the socket (rpiboot_test/daemon_process.hpp), and the next
// line as text: "<eof>" once the daemon closed the connection.
using Client = rpiboot::test::VirtualControlClient;
std::string lineOf(Client& client) {
    return client.readLine().value_or("<eof>");
}

template <typename Predicate>
bool eventually(Predicate done) {
    const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (!done()) {
        if (std::chrono::steady_clock::now() > end) {
            return false;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return true;
}

class VirtualControlTest : public ::testing::Test {
  protected:
    fs::path socket() const { return scratch_.path() / "control"; }
    rpiboot::test::ScratchDir scratch_;
};

TEST_F(VirtualControlTest, PlugsUnplugsListsAndReportsBoards) {
    ControlThread daemon(socket());
    Client client(socket());
    EXPECT_EQ(client.command("help"), "ok plug unplug ports record help");
    EXPECT_EQ(client.command("ports"), "ok");
    EXPECT_EQ(client.command("plug 2711 3-4.1"), "ok 3-4.1");
    EXPECT_EQ(client.command("plug 2837:2"), "ok 1-1 1-2");
    EXPECT_EQ(client.command("ports"), "ok 1-1 1-2 3-4.1");
    ASSERT_TRUE(eventually([&] { return daemon.events().added().size() == 3; }));
    auto added = daemon.events().added();
    std::sort(added.begin(), added.end());
    EXPECT_EQ(added, (std::vector<std::string>{"1-1", "1-2", "3-4.1"}));

    const std::string record = client.command("record 3-4.1");
    ASSERT_EQ(record.rfind("ok {", 0), 0U) << record;
    const auto json = nlohmann::json::parse(record.substr(3));
    EXPECT_TRUE(json.contains("files"));
    EXPECT_TRUE(json.contains("outcome"));

    EXPECT_EQ(client.command("unplug 1-2"), "ok 1-2");
    EXPECT_EQ(client.command("ports"), "ok 1-1 3-4.1");
    EXPECT_EQ(client.command("unplug all"), "ok 1-1 3-4.1");
    EXPECT_EQ(client.command("ports"), "ok");
    EXPECT_TRUE(eventually([&] { return daemon.events().removedCount() == 3; }));
    // The same port again: a reconnect.
    EXPECT_EQ(client.command("plug 2711 3-4.1"), "ok 3-4.1");
}

TEST_F(VirtualControlTest, BadCommandsGetAClearErrorAndChangeNothing) {
    ControlThread daemon(socket());
    Client client(socket());
    EXPECT_EQ(client.command("plug 2711 1-1"), "ok 1-1");
    const std::vector<std::pair<std::string, std::string>> cases = {
        {"", "error empty command (try help)"},
        {"dance", "error unknown command \"dance\" (try help)"},
        {"plug", "error usage: plug ITEM [PORT] | unplug PORT|all | ports | record PORT | help"},
        {"plug 2711 1-2 extra", "error usage:"},
        {"plug 9999", "error --virtual item \"9999\""},
        {"plug 2711:0", "error --virtual item \"2711:0\""},
        {"plug 2711:2 1-5", "error a PORT takes exactly one board"},
        {"plug 2711 1-1", "error virtual bus: port 1-1"},
        {"plug 2711 not-a-port", "error"},
        {"plug /nonexistent/scenario.json", "error --virtual item"},
        {"unplug 1-9", "error virtual bus: no board is plugged into 1-9"},
        {"record 1-9", "error no virtual board at port 1-9"},
        {"ports please", "error usage:"},
    };
    for (const auto& [command, expected] : cases) {
        const std::string reply = client.command(command);
        EXPECT_EQ(reply.rfind(expected, 0), 0U) << command << " -> " << reply;
    }
    EXPECT_EQ(client.command("ports"), "ok 1-1");
    EXPECT_TRUE(eventually([&] { return !daemon.events().added().empty(); }));
    EXPECT_EQ(client.command("plug 2711 1-2"), "ok 1-2");  // a sync point for the events
    EXPECT_TRUE(eventually([&] { return daemon.events().added().size() == 2; }));
    EXPECT_EQ(daemon.events().added(), (std::vector<std::string>{"1-1", "1-2"}));
}

TEST_F(VirtualControlTest, PipelinedAndSplitCommandsAreAnsweredInOrder) {
    ControlThread daemon(socket());
    Client first(socket());
    Client second(socket());
    first.send("plug 2711 1-1\nports\r\nplu");
    EXPECT_EQ(lineOf(first), "ok 1-1");
    EXPECT_EQ(lineOf(first), "ok 1-1");
    EXPECT_EQ(second.command("plug 2712 1-2"), "ok 1-2");
    first.send("g 2837 1-3\n");
    EXPECT_EQ(lineOf(first), "ok 1-3");
    EXPECT_EQ(second.command("ports"), "ok 1-1 1-2 1-3");
}

TEST_F(VirtualControlTest, OverLongLineDisconnectsOnlyThatClient) {
    ControlThread daemon(socket());
    Client rude(socket());
    Client polite(socket());
    rude.send(std::string(VirtualControl::kMaxLine + 100, 'x'));
    EXPECT_EQ(lineOf(rude), "error line longer than 4096 bytes");
    EXPECT_EQ(lineOf(rude), "<eof>");
    EXPECT_EQ(polite.command("plug 2711"), "ok 1-1");
}

TEST_F(VirtualControlTest, ClientsBeyondTheLimitAreTurnedAway) {
    ControlThread daemon(socket());
    std::vector<std::unique_ptr<Client>> clients;
    for (std::size_t i = 0; i < VirtualControl::kMaxClients; ++i) {
        clients.push_back(std::make_unique<Client>(socket()));
        ASSERT_EQ(clients.back()->command("ports"), "ok");
    }
    Client extra(socket());
    EXPECT_EQ(lineOf(extra), "error too many control clients");
    EXPECT_EQ(lineOf(extra), "<eof>");
    clients.pop_back();
    // Its slot is free again once the daemon has seen it go.
    ASSERT_TRUE(eventually([&] {
        Client next(socket());
        return next.command("ports") == "ok";
    }));
}

TEST_F(VirtualControlTest, SocketIsPrivateAndReplacesOnlyAStaleSocket) {
    {
        ControlThread daemon(socket());
        struct stat st {};
        ASSERT_EQ(::lstat(socket().c_str(), &st), 0);
        EXPECT_TRUE(S_ISSOCK(st.st_mode));
        EXPECT_EQ(st.st_mode & 0077, 0U) << "group or others may connect";
    }
    EXPECT_FALSE(fs::exists(socket())) << "the socket outlived the daemon";

    // A socket left behind by a daemon that was killed is replaced.
    {
        const int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
        sockaddr_un address{};
        address.sun_family = AF_UNIX;
        std::strncpy(address.sun_path, socket().c_str(), sizeof address.sun_path - 1);
        ASSERT_EQ(::bind(fd, reinterpret_cast<const sockaddr*>(&address), sizeof address), 0);
        ::close(fd);
    }
    {
        ControlThread daemon(socket());
        Client client(socket());
        EXPECT_EQ(client.command("ports"), "ok");
    }

    // Anything else at that path is left alone.
    const fs::path file = scratch_.write("precious", "keep me");
    try {
        ControlThread daemon(file);
        ADD_FAILURE() << "a regular file was replaced by the socket";
    } catch (const rpiboot::Error& e) {
        EXPECT_EQ(e.code(), rpiboot::Errc::InvalidArgument);
        EXPECT_NE(std::string(e.what()).find("is not a socket"), std::string::npos) << e.what();
    }
    std::ifstream in(file);
    EXPECT_EQ(std::string(std::istreambuf_iterator<char>(in), {}), "keep me");

    EXPECT_THROW(ControlThread(scratch_.path() / std::string(200, 'x')), rpiboot::Error);
}

}  // namespace
}  // namespace rpibootd
