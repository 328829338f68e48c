#include "app/train_command.h"

#include <algorithm>
#include <memory>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <spdlog/spdlog.h>

#include "app/architecture_options.h"
#include "app/cli_checks.h"
#include "app/exit_codes.h"
#include "app/inference_options.h"
#include "app/local_launch.h"
#include "app/progress.h"
#include "app/stop_signal.h"
#include "engine/collectives.h"
#include "engine/trainer.h"
#include "hub/model_argument.h"
#include "models/presets.h"

namespace vit::app {
namespace {

// An option of two numbers (a range, AdamW's betas) stored in two fields.
void add_pair_option(CLI::App* cli, const std::string& name, double& first, double& second, const std::string& help,
                     const std::string& group) {
  cli->add_option_function<std::vector<double>>(
         name,
         [&first, &second](const std::vector<double>& v) {
           first = v[0];
           second = v[1];
         },
         help)
      ->expected(2)
      ->group(group);
}

// --model, the architecture overrides and --init: what the run starts from.
void add_starting_model_options(CLI::App* cli, engine::TrainOptions& o) {
  const std::string group = "Model";
  add_architecture_options(cli, o.model, o.overrides, group);
  cli->add_option_function<std::string>(
         "--init", [&o](const std::string& path) { o.init = path; },
         "Start from this weights file, timm / Hugging Face checkpoint, or Hugging Face Hub id in the local Hugging "
         "Face cache (architecture from the file; head re-initialised if the classes differ)")
      ->group(group);
}

void add_optimization_options(CLI::App* cli, engine::TrainOptions& o) {
  const std::string group = "Optimization";
  cli->add_option("--epochs", o.epochs, "Epochs to train")->capture_default_str()->group(group);
  cli->add_option("-b,--batch-size", o.batch_size, "Images per batch")->capture_default_str()->group(group);
  cli->add_option("--lr", o.lr, "Peak learning rate (AdamW)")->capture_default_str()->group(group);
  cli->add_option("--min-lr", o.min_lr, "Learning rate at the end of the cosine decay")
      ->capture_default_str()
      ->group(group);
  cli->add_option("--weight-decay", o.weight_decay,
                  "AdamW weight decay (not on biases, norms, layer scales, cls_token, reg_token, pos_embed)")
      ->capture_default_str()
      ->group(group);
  add_pair_option(cli, "--opt-betas", o.beta1, o.beta2,
                  "AdamW's decay rates of its gradient and squared-gradient averages, BETA1 BETA2 (default 0.9 0.999)",
                  group);
  cli->add_option("--warmup-epochs", o.warmup_epochs, "Linear warm-up length in epochs (fractions allowed)")
      ->capture_default_str()
      ->group(group);
  cli->add_option("--label-smoothing,--smoothing", o.label_smoothing, "Label smoothing")
      ->capture_default_str()
      ->group(group);
  cli->add_option("--clip-grad", o.clip_grad, "Clip the global gradient norm to this (0 = off)")
      ->capture_default_str()
      ->group(group);
  cli->add_option("--grad-accum", o.grad_accum, "Batches accumulated per optimizer step")
      ->capture_default_str()
      ->group(group);
  cli->add_option("--patch-drop-tail", o.patch_drop_tail,
                  "Share of the run at its end (of its steps, or of --time-limit's time, whichever comes first) "
                  "trained with PatchDropout off: every token, a second cosine cycle from --tail-lr (0 = none)")
      ->capture_default_str()
      ->group(group);
  cli->add_option("--tail-lr", o.tail_lr, "Learning rate the --patch-drop-tail cycle restarts at [default: --lr / 4]")
      ->group(group);
}

void add_augmentation_options(CLI::App* cli, engine::TrainOptions& o) {
  const std::string group = "Augmentation";
  add_pair_option(cli, "--scale", o.scale_min, o.scale_max, "Random-resized-crop area range, MIN MAX (default 0.08 1)",
                  group);
  add_pair_option(cli, "--ratio", o.ratio_min, o.ratio_max,
                  "Random-resized-crop aspect-ratio range, MIN MAX (default 0.75 1.333)", group);
  cli->add_option("--hflip", o.hflip, "Horizontal flip probability")->capture_default_str()->group(group);
  cli->add_option("--auto-augment", o.auto_augment, "Automatic augmentation policy")
      ->check(CLI::IsMember({"none", "trivial", "rand"}))
      ->capture_default_str()
      ->group(group);
  cli->add_option("--ra-num-ops", o.ra_num_ops, "RandAugment: ops per image")->capture_default_str()->group(group);
  cli->add_option("--ra-magnitude", o.ra_magnitude, "RandAugment: magnitude (0-30)")
      ->capture_default_str()
      ->group(group);
  cli->add_option("--reprob", o.random_erasing, "Random erasing probability")->capture_default_str()->group(group);
  cli->add_option("--mixup", o.mixup.mixup_alpha, "Mixup alpha (0 = off)")->capture_default_str()->group(group);
  cli->add_option("--cutmix", o.mixup.cutmix_alpha, "CutMix alpha (0 = off)")->capture_default_str()->group(group);
  cli->add_option("--mixup-prob", o.mixup.prob, "Probability of mixing a batch")->capture_default_str()->group(group);
  cli->add_option("--mixup-switch-prob", o.mixup.switch_prob, "With both on: probability of CutMix")
      ->capture_default_str()
      ->group(group);
}

void add_run_options(CLI::App* cli, engine::TrainOptions& o) {
  const std::string group = "Run";
  cli->add_flag("--ema", o.ema, "Keep an exponential moving average of the weights (evaluated and saved too)")
      ->group(group);
  cli->add_option("--ema-decay", o.ema_decay, "EMA decay per step")->capture_default_str()->group(group);
  add_runtime_options(cli, o.device, o.amp, o.threads, o.workers, group);
  add_cache_option(cli, o.cache_images_mib, group);
  cli->add_option("--seed", o.seed, "Random seed (initialisation, data order, augmentation)")
      ->check(whole_number_from(0))
      ->capture_default_str()
      ->group(group);
  cli->add_option("--time-limit", o.time_limit,
                  "Seconds for the whole run: the learning rate decays over them and the last epoch is validated "
                  "and saved in time (0 = none)")
      ->capture_default_str()
      ->group(group);
  cli->add_flag("--resume", o.resume,
                "Continue the run saved in --out (also on another number of processes)")
      ->group(group);
  cli->add_option("--max-pixels", o.max_pixels, "Reject images with more pixels than this")
      ->capture_default_str()
      ->group(group);
}

void add_distributed_options(CLI::App* cli, engine::TrainOptions& o, int& processes) {
  const std::string group = "Several processes (--processes, or launched by torchrun or srun)";
  cli->add_option("--processes", processes,
                  "Train data-parallel as this many processes on this machine, started by vit (as torchrun "
                  "--standalone --nproc-per-node N would); --batch-size is per process")
      ->check(CLI::Range(1, 1024))
      ->capture_default_str()
      ->group(group);
  cli->add_option("--dist-backend", o.dist_backend,
                  "c10d backend: gloo (CPU), nccl (--device cuda), or auto (nccl on CUDA where built, else gloo)")
      ->check(CLI::IsMember({"auto", "gloo", "nccl"}))
      ->capture_default_str()
      ->group(group);
  cli->add_option("--dist-timeout", o.dist_timeout,
                  "Seconds a process waits for the others (to start, or in a step) before it gives up on them; under "
                  "--processes, also how long (1 to 30 s) the others get to stop by themselves after one failed, "
                  "before vit stops them")
      ->capture_default_str()
      ->group(group);
}

bool given(const CLI::App& cli, const std::string& name) { return cli.get_option(name)->count() > 0; }

// Options that would otherwise be silently ignored beside another: refused, or (--resume) named in a warning.
void check_options_given_together(const CLI::App& cli, const engine::TrainOptions& o) {
  if (o.resume) {
    // engine::train continues a run with the options it was started with; only these come from this launch.
    static const std::set<std::string> from_this_launch = {"DATA_DIR",       "--out",          "--resume",
                                                           "--dist-backend", "--dist-timeout", "--processes"};
    std::vector<std::string> ignored;
    for (const CLI::Option* option : cli.get_options()) {
      const std::string name = option->get_name();
      if (option->count() > 0 && from_this_launch.count(name) == 0) ignored.push_back(name);
    }
    if (!ignored.empty())
      spdlog::warn("--resume continues the run with the options it was started with; ignored: {}",
                   fmt::join(ignored, ", "));
    return;
  }
  if (given(cli, "--ema-decay") && !o.ema)
    throw std::invalid_argument("--ema-decay sets the decay of --ema's average, and --ema is not given");
  if (given(cli, "--init") && given(cli, "--model"))
    throw std::invalid_argument("--model and --init both name the architecture: --init trains the architecture of '" +
                                o.init->string() + "'; leave --model out");
}

// `--processes N`: this command line again as N ranks (local_launch.h), unless a launcher already started this one.
// After a rank fails, the others get as long as they would wait for a peer themselves (--dist-timeout), at least 1
// s and at most 30 s, to stop by themselves before they are asked to, and as long again before they are killed.
int run_local_processes(int processes, double dist_timeout) {
  if (engine::read_distributed_env().distributed())
    throw std::invalid_argument(
        "--processes starts the run's processes itself, and this one was started as one of "
        "several (RANK / WORLD_SIZE or SLURM_PROCID / SLURM_NTASKS are set): leave "
        "--processes out under torchrun or srun");
  return launch_local_processes(processes, without_option(own_command_line(), "--processes"),
                                std::clamp(dist_timeout, 1.0, 30.0));
}

int run_train(engine::TrainOptions options, bool quiet) {
  stop_with_launcher();
  const engine::DistributedEnv env = engine::read_distributed_env();
  if (env.distributed()) {
    // Every rank logs, its lines marked; rank 0 alone draws the progress and sums up.
    spdlog::set_pattern(fmt::format("%^%l%$: [rank {}] %v", env.rank));
    quiet = quiet || env.rank != 0;
  }
  if (options.init) options.init = hub::resolve_model_argument(options.init->string());
  TrainProgress progress(quiet);
  const auto& stop = stop_cleanly_on_signals();
  engine::TrainSummary s;
  try {
    s = engine::train(options, progress, &stop, env);
  } catch (const engine::LostPeerError& e) {
    spdlog::error("{}", e.what());
    spdlog::error("'{}' holds the last complete checkpoint: continue with the same launch and --resume",
                  options.out_dir.string());
    return kExitLostPeer;
  }
  if (env.rank != 0) return s.outcome == engine::TrainOutcome::Interrupted ? 130 : kExitOk;
  const auto dir = s.run_dir.string();
  if (s.bad_files > 0)
    spdlog::warn("{} file{} could not be read and {} skipped", s.bad_files, s.bad_files == 1 ? "" : "s",
                 s.bad_files == 1 ? "was" : "were");
  if (s.outcome == engine::TrainOutcome::Interrupted) {
    if (env.distributed()) {
      spdlog::warn("interrupted after {} of {} epochs; the state is saved. Continue with the same launch and "
                   "--resume (on any number of processes)",
                   s.epochs_done, s.epochs_target);
    } else {
      spdlog::warn(
          "interrupted after {} of {} epochs; the state is saved. Continue with:\n  vit train {} --out {} --resume",
          s.epochs_done, s.epochs_target, options.data_dir.string(), dir);
    }
    return 130;  // 128 + SIGINT, the shell convention for a run stopped by Ctrl-C
  }
  if (s.outcome == engine::TrainOutcome::TimeLimit) {
    spdlog::info("time limit reached after {} epoch{} (the last one validated and saved as it stood)", s.epochs_done,
                 s.epochs_done == 1 ? "" : "s");
  }
  if (s.best_top1 >= 0.0) {
    spdlog::info("best validation top-1 {:.4f}, top-5 {:.4f} (epoch {}); {} epochs in {:.0f} s", s.best_top1,
                 s.best_top5, s.best_epoch, s.epochs_done, s.seconds);
  } else {
    spdlog::info("{} epochs in {:.0f} s (no validation data)", s.epochs_done, s.seconds);
  }
  spdlog::info("files: {0}/best.safetensors, {0}/last.safetensors, {0}/metrics.csv, {0}/curves.png, {0}/config.json",
               dir);
  return kExitOk;
}

}  // namespace

Command setup_train(CLI::App& app) {
  auto options = std::make_shared<engine::TrainOptions>();
  auto processes = std::make_shared<int>(1);
  CLI::App* cli = app.add_subcommand("train", "Train a Vision Transformer on a folder of images");
  cli->add_option("DATA_DIR", options->data_dir,
                  "Images in DATA_DIR/<class>/..., or DATA_DIR/train/<class>/... with DATA_DIR/val/<class>/...")
      ->required()
      ->check(CLI::ExistingDirectory);
  cli->add_option("-o,--out", options->out_dir, "Run folder for weights, metrics and the resume state")->required();
  cli->add_option_function<std::string>(
         "--val", [o = options.get()](const std::string& dir) { o->val_dir = dir; },
         "Validation images, DIR/<class>/... (default DATA_DIR/val when DATA_DIR/train exists)")
      ->check(CLI::ExistingDirectory);
  cli->add_option("--val-split", options->val_split, "Without a validation folder, hold out this fraction per class")
      ->capture_default_str();
  cli->add_option("--val-every", options->val_every,
                  "Validate after every N-th epoch and after the last (best.safetensors is the best validated one)")
      ->capture_default_str();
  cli->add_option("--val-tta", options->val_tta,
                  "Validation's test-time augmentation: hflip averages each image's class probabilities with its "
                  "mirror image's (two forward passes per validation image)")
      ->check(CLI::IsMember({"none", "hflip"}))
      ->capture_default_str();
  add_starting_model_options(cli, *options);
  add_optimization_options(cli, *options);
  add_augmentation_options(cli, *options);
  add_run_options(cli, *options);
  add_distributed_options(cli, *options, *processes);
  cli->footer(
      "Writes RUN_DIR/{best,last}.safetensors, metrics.csv, curves.png, config.json and resume.safetensors. "
      "Ctrl-C stops after the current step and saves; --resume continues. With --processes N, or under torchrun "
      "or srun (RANK / WORLD_SIZE, or SLURM_PROCID / SLURM_NTASKS), the processes train one model "
      "data-parallel; --batch-size is per process.");
  return {cli, [options, processes, cli, &app] {
            check_options_given_together(*cli, *options);
            if (*processes > 1) return run_local_processes(*processes, options->dist_timeout);
            return run_train(*options, app.get_option("--quiet")->count() > 0);
          }};
}

}  // namespace vit::app
