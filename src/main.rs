//! The `dermabook` command: parse, load configuration, dispatch.

use std::io::{IsTerminal, Read};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use dermabook::api::staff::NewStaff;
use dermabook::app::{Application, prepare_database};
use dermabook::config::Settings;
use dermabook::domain::roles::Role;
use dermabook::staff::create_staff;
use dermabook::{api, db, demo, scheduling, telemetry};
use validator::Validate;

#[derive(Parser)]
#[command(
    name = "dermabook",
    version,
    about = "Booking backend for dermatology and aesthetic clinics"
)]
struct Cli {
    /// Folder holding default.toml and {profile}.toml.
    #[arg(long, global = true, default_value = "config")]
    config_dir: PathBuf,
    /// Adds config/{profile}.toml over the defaults.
    #[arg(long, global = true, env = "DERMABOOK_PROFILE")]
    profile: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Migrate, seed the demo clinic if configured, and serve the API.
    Serve {
        /// Seed the demo clinic (its logins only on a loopback address).
        #[arg(long)]
        demo: bool,
    },
    /// Apply pending database migrations and exit.
    Migrate,
    /// Print the API's OpenAPI document (the one served at /api/openapi.json).
    Openapi,
    /// Add the demo clinic's dermatologists, treatments and staff (only what is missing).
    SeedDemo,
    /// Generate slots from the weekly schedules for local dates FROM to TO (default: the
    /// rolling horizon from today); idempotent.
    GenerateSlots {
        #[arg(long)]
        from: Option<chrono::NaiveDate>,
        #[arg(long)]
        to: Option<chrono::NaiveDate>,
        #[arg(long)]
        dermatologist_id: Option<i64>,
    },
    /// Create a staff login; the password is read from a prompt, or from standard input
    /// when it is not a terminal.
    CreateStaff {
        #[arg(long)]
        email: String,
        #[arg(long)]
        name: String,
        /// admin, front_desk or dermatologist
        #[arg(long, value_parser = parse_role)]
        role: Role,
        /// The dermatologist a dermatologist-role login belongs to.
        #[arg(long)]
        dermatologist_id: Option<i64>,
    },
}

fn parse_role(value: &str) -> Result<Role, String> {
    Role::parse(value).ok_or_else(|| "must be admin, front_desk or dermatologist".to_string())
}

/// Caps glibc's malloc at two arenas, before any thread starts. glibc gives up to eight
/// arenas a core to threads that allocate at once and keeps what each grew to, so the
/// server's workers and blocking threads held memory no answer needed: peak RSS under
/// the varied benchmark fell from 62 to 55 MB on SQLite and from 57 to 50 MB on
/// PostgreSQL, at the same throughput (bench/RESULTS.md). `MALLOC_ARENA_MAX` in the
/// environment still decides when an operator sets it.
fn cap_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    let tuned = std::env::var("GLIBC_TUNABLES").is_ok_and(|t| t.contains("arena_max"));
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() && !tuned {
        // SAFETY: mallopt only sets a tunable of the allocator; it is called before any
        // other thread exists, and a refusal (a 0 return) leaves glibc's default.
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, 2);
        }
    }
}

fn main() -> ExitCode {
    cap_malloc_arenas();
    let cli = Cli::parse();
    let settings = match Settings::load(&cli.config_dir, cli.profile.as_deref()) {
        Ok(settings) => settings,
        Err(error) => {
            eprintln!("error: {error:#}");
            return ExitCode::from(2);
        }
    };
    telemetry::init(&settings.log);
    match run(cli.command, settings) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(command: Command, settings: Settings) -> anyhow::Result<()> {
    match command {
        Command::Serve { demo } => {
            let mut settings = settings;
            settings.demo.seed_on_start |= demo;
            serve(settings)
        }
        Command::Openapi => {
            use std::io::Write;
            let document = api::document().to_pretty_json()?;
            // A reader that stops early (`| head`) is no error.
            match writeln!(std::io::stdout(), "{document}") {
                Err(error) if error.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
                other => Ok(other?),
            }
        }
        Command::Migrate => {
            let pool = db::connect(&settings.database.url, 1, settings.database.busy_timeout_ms)?;
            let applied = db::run_migrations(&mut *db::checkout(&pool)?)?;
            println!("{applied} migration(s) applied");
            Ok(())
        }
        Command::SeedDemo => {
            let mut settings = settings;
            settings.demo.seed_on_start = false;
            let pool = prepare_database(&settings)?;
            let with_logins = demo::logins_allowed(&settings);
            let added = demo::seed(&mut *db::checkout(&pool)?, with_logins)?;
            println!("demo clinic: {added} record(s) added");
            if with_logins {
                print_demo_logins();
            } else {
                println!(
                    "no demo logins: server.bind {} is not a loopback address",
                    settings.server.bind
                );
            }
            Ok(())
        }
        Command::GenerateSlots {
            from,
            to,
            dermatologist_id,
        } => {
            let tz = settings.clinic.timezone;
            let today = chrono::Utc::now().with_timezone(&tz).date_naive();
            let from = from.unwrap_or(today);
            let to =
                to.unwrap_or(from + chrono::Duration::days(i64::from(settings.slots.horizon_days)));
            anyhow::ensure!(from <= to, "--to must not be before --from");
            anyhow::ensure!(
                (to - from).num_days() < 366,
                "the range may cover at most 366 days"
            );
            let mut settings = settings;
            settings.demo.seed_on_start = false;
            let pool = prepare_database(&settings)?;
            let outcome = scheduling::generate(
                &mut *db::checkout(&pool)?,
                tz,
                dermatologist_id,
                from,
                to,
                db::now(),
            )?;
            println!(
                "slots: {} added, {} removed, {} booked outside the hours",
                outcome.added,
                outcome.removed,
                outcome.conflicts.len()
            );
            for c in outcome.conflicts {
                println!(
                    "conflict: slot {} (booking {}) at {} UTC",
                    c.slot_id, c.booking_id, c.starts_at
                );
            }
            Ok(())
        }
        Command::CreateStaff {
            email,
            name,
            role,
            dermatologist_id,
        } => {
            let password = read_password()?;
            let new = NewStaff {
                email,
                name,
                role,
                password,
                dermatologist_id,
            };
            new.validate()
                .map_err(|e| anyhow::anyhow!("{}", describe(&api::extract::field_errors(&e))))?;
            let mut settings = settings;
            settings.demo.seed_on_start = false;
            let pool = prepare_database(&settings)?;
            let staff = create_staff(&mut *db::checkout(&pool)?, new.into())?;
            println!(
                "created {} ({}) with id {}",
                staff.email, staff.role, staff.id
            );
            Ok(())
        }
    }
}

fn describe(errors: &[api::problem::FieldError]) -> String {
    errors
        .iter()
        .map(|e| format!("{}: {}", e.field, e.message))
        .collect::<Vec<_>>()
        .join("; ")
}

fn read_password() -> anyhow::Result<String> {
    let password = if std::io::stdin().is_terminal() {
        let first = rpassword::prompt_password("Password: ")?;
        let second = rpassword::prompt_password("Repeat password: ")?;
        anyhow::ensure!(first == second, "the passwords differ");
        first
    } else {
        let mut input = String::new();
        std::io::stdin().read_to_string(&mut input)?;
        input.lines().next().unwrap_or_default().to_string()
    };
    Ok(password)
}

fn print_demo_logins() {
    println!(
        "demo front-desk login: {} / {}",
        demo::FRONT_DESK_EMAIL,
        demo::FRONT_DESK_PASSWORD
    );
    println!(
        "demo admin login:      {} / {}",
        demo::ADMIN_EMAIL,
        demo::ADMIN_PASSWORD
    );
}

fn serve(settings: Settings) -> anyhow::Result<()> {
    let demo = settings.demo.seed_on_start && demo::logins_allowed(&settings);
    actix_web::rt::System::new().block_on(async move {
        let app = Application::build(settings).await?;
        println!("dermabook listening on {}", app.address());
        if demo {
            print_demo_logins();
        }
        app.run_until_stopped().await?;
        tracing::info!("stopped");
        Ok(())
    })
}
