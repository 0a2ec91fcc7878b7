//! Availability search over an in-memory index of free slots, one per instance.
//!
//! A search reads no rows: the index holds every open, unclaimed slot from the time it was
//! loaded on, per dermatologist, and the catalogue (each active treatment's length and its
//! active performers). It stays true through `availability_week_marks`: versions that database
//! triggers bump whenever slots, claims or the catalogue change, whoever changes them.
//! Before answering, a search compares those versions with the ones the index was loaded
//! at, and reloads only what moved: a dermatologist's weeks, or the catalogue. It does so
//! - after any change made through this instance ([`AvailabilityIndex::changed`]), so no
//!   answer from here is stale after it. The request that made the change starts that
//!   check at once, beside its answer; searches that come meanwhile wait for it and take
//!   what it loaded rather than checking again in turn;
//! - otherwise at most every `staleness`, which bounds how stale an answer can be after a
//!   change made through another instance.
//!
//! Booking stays the only authority: a stale opening costs a 409, never a double booking.

use std::collections::{HashMap, HashSet};
use std::ops::{Deref, Range};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

use chrono::{Duration, NaiveDateTime};

use crate::clock::Clock;
use crate::db::DbConnection;
use crate::domain::availability::{FreeSlot, Opening, openings_of_one};
use crate::store::{availability as marks, slots, treatments};

/// How far ahead the index loads slots: beyond any horizon a clinic configures.
const LOADED_DAYS: i64 = 3660;

#[derive(Debug, thiserror::Error)]
pub enum SearchError {
    #[error("no such treatment")]
    UnknownTreatment,
    #[error("no such dermatologist")]
    UnknownDermatologist,
}

/// What one search asks: starts of `treatment` in `[earliest, latest)` (UTC), by anyone
/// who performs it or by one dermatologist.
#[derive(Debug, Clone)]
pub struct Question<'a> {
    pub treatment: &'a str,
    pub dermatologist: Option<i64>,
    pub earliest: NaiveDateTime,
    pub latest: NaiveDateTime,
}

#[derive(Debug, Clone)]
struct Offer {
    duration: Duration,
    buffer: Duration,
    performers: Vec<i64>,
}

/// Openings by the (duration, buffer) they were found for.
type OpeningsByLength = HashMap<(Duration, Duration), Arc<[Opening]>>;

/// One dermatologist's free slots, and the openings found in them for each length asked:
/// kept across generations for as long as the dermatologist's slots do not move, so a
/// booking makes the index find again only its own dermatologist's openings.
#[derive(Debug, Default)]
struct Calendar {
    slots: Vec<FreeSlot>,
    openings: Mutex<OpeningsByLength>,
}

impl Calendar {
    fn openings(&self, duration: Duration, buffer: Duration) -> Arc<[Opening]> {
        lock(&self.openings)
            .entry((duration, buffer))
            .or_insert_with(|| openings_of_one(&self.slots, duration, buffer).into())
            .clone()
    }
}

/// The openings one question finds, in time order, then dermatologist: a range of a list
/// the snapshot shares, so answering copies none of them.
#[derive(Debug, Clone, Default)]
pub struct Openings {
    list: Arc<[Opening]>,
    range: Range<usize>,
}

impl Openings {
    fn within(list: Arc<[Opening]>, earliest: NaiveDateTime, latest: NaiveDateTime) -> Openings {
        let first = list.partition_point(|o| o.starts_at < earliest);
        let end = list.partition_point(|o| o.starts_at < latest).max(first);
        Openings {
            list,
            range: first..end,
        }
    }
}

impl Deref for Openings {
    type Target = [Opening];

    fn deref(&self) -> &[Opening] {
        &self.list[self.range.clone()]
    }
}

/// The free slots and catalogue as of one check of the versions.
#[derive(Debug, Default)]
pub struct Snapshot {
    /// Grows whenever the contents change, never otherwise: answers computed from one
    /// generation stay true until the next.
    generation: u64,
    /// The marks' versions by (dermatologist, week), of the weeks from the check's on.
    versions: HashMap<(i64, i64), i64>,
    treatments: Arc<HashMap<String, Offer>>,
    active: Arc<HashSet<i64>>,
    free: HashMap<i64, Arc<Calendar>>,
    /// Per treatment, every performer's openings merged in time order: carried from the
    /// generation before with the moved dermatologists' openings replaced, or built at
    /// the first question about it, then shared by every question after.
    merged: Mutex<Merged>,
}

/// One cell per treatment, so merging one treatment holds up no question about another.
type Merged = HashMap<String, Arc<OnceLock<Arc<[Opening]>>>>;

impl Snapshot {
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// How long an appointment of `treatment` lasts, if it is offered.
    pub fn duration_of(&self, treatment: &str) -> Option<Duration> {
        self.treatments.get(treatment).map(|o| o.duration)
    }

    /// Every start where the treatment fits, sorted by time, then dermatologist.
    pub fn openings(&self, question: &Question) -> Result<Openings, SearchError> {
        let offer = self
            .treatments
            .get(question.treatment)
            .ok_or(SearchError::UnknownTreatment)?;
        let list = match question.dermatologist {
            Some(id) if !self.active.contains(&id) => {
                return Err(SearchError::UnknownDermatologist);
            }
            Some(id) if offer.performers.contains(&id) => self
                .free
                .get(&id)
                .map(|calendar| calendar.openings(offer.duration, offer.buffer))
                .unwrap_or_default(),
            Some(_) => Arc::default(),
            None => self.merged(question.treatment, offer),
        };
        Ok(Openings::within(list, question.earliest, question.latest))
    }

    fn merged(&self, treatment: &str, offer: &Offer) -> Arc<[Opening]> {
        let cell = {
            let mut merged = lock(&self.merged);
            match merged.get(treatment) {
                Some(cell) => cell.clone(),
                None => merged.entry(treatment.to_string()).or_default().clone(),
            }
        };
        // A second question about the same treatment waits: it would only merge the same
        // lists again.
        cell.get_or_init(|| openings_of(offer, &self.free, |_| true).into())
            .clone()
    }

    /// The snapshot after `previous`, or `None` when nothing it holds has changed. Reads
    /// the versions first: a change committed after that read bumps them again, so the
    /// next check reloads whatever it touched, even if this one already saw it.
    pub fn reload(
        conn: &mut DbConnection,
        previous: &Snapshot,
        since: NaiveDateTime,
    ) -> diesel::QueryResult<Option<Snapshot>> {
        let first_week = marks::week_of(since);
        let versions: HashMap<(i64, i64), i64> =
            marks::marks(conn, first_week)?.into_iter().collect();
        let first = previous.generation == 0;
        if !first && versions == previous.versions {
            return Ok(None);
        }
        let moved = moved_weeks(&previous.versions, &versions, first_week);
        let catalogue_moved = first || moved.contains_key(&marks::CATALOGUE);
        let (treatments, active) = if catalogue_moved {
            let (treatments, active) = load_catalogue(conn)?;
            (Arc::new(treatments), Arc::new(active))
        } else {
            (previous.treatments.clone(), previous.active.clone())
        };
        let lengths: HashSet<(Duration, Duration)> = treatments
            .values()
            .map(|o| (o.duration, o.buffer))
            .collect();
        let mut free = HashMap::with_capacity(active.len());
        for &id in active.iter() {
            let calendar = match previous.free.get(&id) {
                Some(kept) => match moved.get(&id) {
                    None => {
                        if catalogue_moved {
                            // Openings of lengths no treatment has any more are not asked
                            // for again.
                            lock(&kept.openings).retain(|length, _| lengths.contains(length));
                        }
                        kept.clone()
                    }
                    Some(weeks) => Arc::new(Calendar {
                        slots: reload_weeks(conn, id, &kept.slots, weeks, since)?,
                        openings: Mutex::default(),
                    }),
                },
                None => Arc::new(Calendar {
                    slots: slots::free(conn, &[id], since, since + Duration::days(LOADED_DAYS))?,
                    openings: Mutex::default(),
                }),
            };
            free.insert(id, calendar);
        }
        // Whose calendar this generation loaded anew (not whose version moved: the same
        // thing today, but the merge must follow what was loaded).
        let reloaded = |id: i64| {
            previous
                .free
                .get(&id)
                .zip(free.get(&id))
                .is_none_or(|(before, now)| !Arc::ptr_eq(before, now))
        };
        let merged = if catalogue_moved {
            Merged::new()
        } else {
            let carried: Vec<(String, Arc<[Opening]>)> = lock(&previous.merged)
                .iter()
                .filter_map(|(treatment, cell)| Some((treatment.clone(), cell.get()?.clone())))
                .collect();
            carried
                .into_iter()
                .filter_map(|(treatment, list)| {
                    let offer = treatments.get(&treatment)?;
                    let list = if offer.performers.iter().any(|&id| reloaded(id)) {
                        let fresh = openings_of(offer, &free, reloaded);
                        Arc::from(remerge(&list, reloaded, &fresh))
                    } else {
                        list
                    };
                    Some((treatment, Arc::new(OnceLock::from(list))))
                })
                .collect()
        };
        Ok(Some(Snapshot {
            generation: previous.generation + 1,
            versions,
            treatments,
            active,
            free,
            merged: Mutex::new(merged),
        }))
    }

    /// How many free slots the index holds, for the metrics.
    pub fn slots_held(&self) -> usize {
        self.free.values().map(|c| c.slots.len()).sum()
    }
}

/// The weeks whose marks moved between two reads, by dermatologist (or
/// [`marks::CATALOGUE`]): a mark that is new, bumped or gone. Weeks before `first_week`
/// are over and matter to no search, so a mark the later read no longer covers did not move.
fn moved_weeks(
    before: &HashMap<(i64, i64), i64>,
    now: &HashMap<(i64, i64), i64>,
    first_week: i64,
) -> HashMap<i64, Vec<i64>> {
    let mut moved: HashMap<i64, Vec<i64>> = HashMap::new();
    let bumped = now
        .iter()
        .filter(|(key, version)| before.get(key) != Some(version));
    let gone = before
        .iter()
        .filter(|((id, week), _)| *week >= first_week || *id == marks::CATALOGUE)
        .filter(|(key, _)| !now.contains_key(key));
    for (&(id, week), _) in bumped.chain(gone) {
        moved.entry(id).or_default().push(week);
    }
    moved
}

/// A dermatologist's free slots after the weeks in `weeks` moved: `kept` from `since` on
/// and outside the span from the first of them to the end of the last, and that span
/// read again (from `since` on too: the past is dropped, as a full load drops it). One
/// read of one week, for a booking, rather than of the whole horizon.
fn reload_weeks(
    conn: &mut DbConnection,
    id: i64,
    kept: &[FreeSlot],
    weeks: &[i64],
    since: NaiveDateTime,
) -> diesel::QueryResult<Vec<FreeSlot>> {
    let (Some(&first), Some(&last)) = (weeks.iter().min(), weeks.iter().max()) else {
        return Ok(kept.to_vec());
    };
    let (from, to) = (marks::week_start(first), marks::week_start(last + 1));
    let kept = &kept[kept.partition_point(|s| s.starts_at < since)..];
    let fresh = if to > since {
        slots::free(conn, &[id], from.max(since), to)?
    } else {
        Vec::new()
    };
    Ok(splice(kept, from..to, fresh))
}

/// `kept` (in time order) with its slots starting within `span` replaced by `fresh` (in
/// time order, all within `span`).
fn splice(kept: &[FreeSlot], span: Range<NaiveDateTime>, fresh: Vec<FreeSlot>) -> Vec<FreeSlot> {
    let before = kept.partition_point(|s| s.starts_at < span.start);
    let after = kept.partition_point(|s| s.starts_at < span.end);
    let mut all = Vec::with_capacity(before + fresh.len() + kept.len() - after);
    all.extend_from_slice(&kept[..before]);
    all.extend(fresh);
    all.extend_from_slice(&kept[after..]);
    all
}

/// The openings of `offer`'s performers that `include` picks, merged in time order, then
/// dermatologist.
fn openings_of(
    offer: &Offer,
    free: &HashMap<i64, Arc<Calendar>>,
    include: impl Fn(i64) -> bool,
) -> Vec<Opening> {
    let mut all = Vec::new();
    for &id in offer.performers.iter().filter(|&&id| include(id)) {
        if let Some(calendar) = free.get(&id) {
            all.extend_from_slice(&calendar.openings(offer.duration, offer.buffer));
        }
    }
    // Stable: it merges the dermatologists' runs, each already in time order.
    all.sort_by_key(|o| (o.starts_at, o.dermatologist_id));
    all
}

/// `previous` (merged in time order, then dermatologist) with the openings of the
/// dermatologists `moved` picks replaced by `fresh` (in the same order): one pass, where
/// merging every performer's openings again sorts them all.
fn remerge(previous: &[Opening], moved: impl Fn(i64) -> bool, fresh: &[Opening]) -> Vec<Opening> {
    let key = |o: &Opening| (o.starts_at, o.dermatologist_id);
    let mut kept = previous
        .iter()
        .filter(|o| !moved(o.dermatologist_id))
        .peekable();
    let mut fresh = fresh.iter().peekable();
    let mut out = Vec::with_capacity(previous.len() + fresh.len());
    loop {
        let next = match (kept.peek(), fresh.peek()) {
            (Some(a), Some(b)) if key(a) <= key(b) => kept.next(),
            (Some(_), Some(_)) | (None, Some(_)) => fresh.next(),
            (Some(_), None) => kept.next(),
            (None, None) => break,
        };
        out.extend(next.copied());
    }
    out
}

/// A lock whose holder cannot leave its data half-changed: every change under it is one
/// insertion.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

type Catalogue = (HashMap<String, Offer>, HashSet<i64>);

fn load_catalogue(conn: &mut DbConnection) -> diesel::QueryResult<Catalogue> {
    let active: HashSet<i64> = marks::active_dermatologists(conn)?.into_iter().collect();
    let mut performers: HashMap<i64, Vec<i64>> = HashMap::new();
    for (treatment, dermatologist) in marks::performers(conn)? {
        performers.entry(treatment).or_default().push(dermatologist);
    }
    let offers = treatments::list(conn, false)?
        .into_iter()
        .map(|t| {
            let offer = Offer {
                duration: Duration::minutes(i64::from(t.duration_minutes)),
                buffer: Duration::minutes(i64::from(t.buffer_minutes)),
                performers: performers.remove(&t.id).unwrap_or_default(),
            };
            (t.slug, offer)
        })
        .collect();
    Ok((offers, active))
}

struct Checked {
    snapshot: Arc<Snapshot>,
    /// When the versions were last read (by the clock's monotonic time).
    at: Option<Instant>,
    /// Changes made through this instance so far, and how many of them the snapshot has
    /// seen (those made before its check began). A count, not a flag: a check that is
    /// still running, or was abandoned, has seen nothing yet.
    changes: u64,
    seen: u64,
}

pub struct AvailabilityIndex {
    staleness: std::time::Duration,
    clock: Clock,
    checked: Mutex<Checked>,
    /// One check at a time; the others wait for its snapshot.
    checking: tokio::sync::Mutex<()>,
}

impl AvailabilityIndex {
    /// An index that checks the versions at most `staleness` apart, and at the first
    /// search after any change through this instance.
    pub fn new(staleness: std::time::Duration, clock: Clock) -> AvailabilityIndex {
        AvailabilityIndex {
            staleness,
            clock,
            checked: Mutex::new(Checked {
                snapshot: Arc::default(),
                at: None,
                changes: 0,
                seen: 0,
            }),
            checking: tokio::sync::Mutex::new(()),
        }
    }

    /// Something may have changed through this instance: searches from now on wait for a
    /// check that began after it.
    pub fn changed(&self) {
        self.lock().changes += 1;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Checked> {
        lock(&self.checked)
    }

    /// A snapshot no staler than the rules above. `reload` runs
    /// [`Snapshot::reload`] on a connection (the caller knows how to get one).
    pub async fn current<F, Fut, E>(&self, reload: F) -> Result<Arc<Snapshot>, E>
    where
        F: FnOnce(Arc<Snapshot>, NaiveDateTime) -> Fut,
        Fut: Future<Output = Result<Option<Snapshot>, E>>,
    {
        let arrived = self.clock.instant();
        let needed = {
            let checked = self.lock();
            if self.enough_for(&checked, arrived, checked.changes) {
                return Ok(checked.snapshot.clone());
            }
            checked.changes
        };
        let _turn = self.checking.lock().await;
        let (previous, changes) = {
            let checked = self.lock();
            // The check this search waited for may be enough: then it does not check
            // again. Searches queued behind one check would otherwise each read the
            // versions in turn.
            if self.enough_for(&checked, arrived, needed) {
                return Ok(checked.snapshot.clone());
            }
            (checked.snapshot.clone(), checked.changes)
        };
        let began = self.clock.instant();
        let next = reload(previous, self.clock.now()).await?;
        let mut checked = self.lock();
        if let Some(next) = next {
            checked.snapshot = Arc::new(next);
        }
        checked.at = Some(began);
        checked.seen = checked.seen.max(changes);
        crate::instruments::availability_index(checked.snapshot.slots_held());
        Ok(checked.snapshot.clone())
    }

    /// Whether a search that arrived at `arrived`, after `needed` changes here, may take
    /// the snapshot as it is: it has seen those changes, and whatever was committed a
    /// `staleness` before the search.
    fn enough_for(&self, checked: &Checked, arrived: Instant, needed: u64) -> bool {
        checked.seen >= needed && checked.at.is_some_and(|at| arrived < at + self.staleness)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn at(hour: u32, minute: u32) -> NaiveDateTime {
        chrono::NaiveDate::from_ymd_opt(2026, 6, 1)
            .unwrap()
            .and_hms_opt(hour, minute, 0)
            .unwrap()
    }

    fn snapshot(generation: u64) -> Snapshot {
        let slots: Vec<FreeSlot> = [(9, 0), (9, 15), (9, 30), (10, 0)]
            .iter()
            .enumerate()
            .map(|(i, &(h, m))| FreeSlot {
                id: i as i64,
                dermatologist_id: 7,
                starts_at: at(h, m),
                ends_at: at(h, m) + Duration::minutes(15),
            })
            .collect();
        let offer = Offer {
            duration: Duration::minutes(30),
            buffer: Duration::zero(),
            performers: vec![7],
        };
        Snapshot {
            generation,
            versions: HashMap::new(),
            treatments: Arc::new(HashMap::from([("consultation".to_string(), offer)])),
            active: Arc::new(HashSet::from([7, 8])),
            free: HashMap::from([(
                7,
                Arc::new(Calendar {
                    slots,
                    openings: Mutex::default(),
                }),
            )]),
            merged: Mutex::default(),
        }
    }

    proptest::proptest! {
        #[test]
        fn remerging_the_moved_dermatologists_equals_merging_all_again(
            // (dermatologist, quarter hour) of each opening, before and after the change.
            before in proptest::collection::btree_set((1i64..5, 0i64..40), 0..60),
            after in proptest::collection::btree_set((1i64..5, 0i64..40), 0..60),
            moved in proptest::collection::btree_set(1i64..5, 0..4),
        ) {
            let opening = |&(dermatologist_id, quarter): &(i64, i64)| Opening {
                dermatologist_id,
                starts_at: at(8, 0) + Duration::minutes(15 * quarter),
                ends_at: at(8, 0) + Duration::minutes(15 * quarter + 30),
            };
            let sorted = |mut all: Vec<Opening>| {
                all.sort_by_key(|o| (o.starts_at, o.dermatologist_id));
                all
            };
            let previous = sorted(before.iter().map(opening).collect());
            // After the change: the moved dermatologists' openings are `after`'s, the
            // others' stay `before`'s.
            let fresh = sorted(
                after.iter().filter(|(id, _)| moved.contains(id)).map(opening).collect(),
            );
            let expected = sorted(
                before
                    .iter()
                    .filter(|(id, _)| !moved.contains(id))
                    .chain(after.iter().filter(|(id, _)| moved.contains(id)))
                    .map(opening)
                    .collect(),
            );
            proptest::prop_assert_eq!(remerge(&previous, |id| moved.contains(&id), &fresh), expected);
        }
    }

    #[test]
    fn the_weeks_that_moved_are_the_new_the_bumped_and_the_gone_from_the_first_week_on() {
        let before = HashMap::from([
            ((1, 10), 1),
            ((1, 11), 1),
            ((2, 11), 4),
            ((1, 9), 1),
            ((0, 0), 3),
        ]);
        let now = HashMap::from([((1, 10), 1), ((1, 11), 2), ((2, 12), 1), ((0, 0), 3)]);
        let mut moved = moved_weeks(&before, &now, 10);
        moved.values_mut().for_each(|weeks| weeks.sort());
        assert_eq!(
            moved,
            HashMap::from([(1, vec![11]), (2, vec![11, 12])]),
            "week 9 is over: its mark going unread is no move"
        );
        let catalogue = HashMap::from([((0, 0), 4)]);
        assert!(moved_weeks(&before, &catalogue, 10).contains_key(&marks::CATALOGUE));
    }

    #[test]
    fn a_reloaded_span_replaces_exactly_the_slots_that_start_within_it() {
        let slot = |id: i64, hour: u32| FreeSlot {
            id,
            dermatologist_id: 7,
            starts_at: at(hour, 0),
            ends_at: at(hour, 0) + Duration::hours(1),
        };
        let kept = [
            slot(1, 8),
            slot(2, 9),
            slot(3, 10),
            slot(4, 11),
            slot(5, 12),
        ];
        let ids = |slots: Vec<FreeSlot>| slots.iter().map(|s| s.id).collect::<Vec<_>>();
        assert_eq!(
            ids(splice(&kept, at(9, 0)..at(11, 0), vec![slot(9, 10)])),
            [1, 9, 4, 5]
        );
        assert_eq!(
            ids(splice(&kept, at(13, 0)..at(14, 0), vec![])),
            [1, 2, 3, 4, 5]
        );
        assert_eq!(ids(splice(&[], at(9, 0)..at(10, 0), vec![slot(2, 9)])), [2]);
    }

    #[test]
    fn a_snapshot_answers_from_its_slots_within_the_question() {
        let snapshot = snapshot(1);
        let question = Question {
            treatment: "consultation",
            dermatologist: None,
            earliest: at(9, 10),
            latest: at(12, 0),
        };
        let found = snapshot.openings(&question).unwrap();
        assert_eq!(
            found.iter().map(|o| o.starts_at).collect::<Vec<_>>(),
            [at(9, 15)],
            "9:00 is before the question, 9:30 and 10:00 are not followed by a second slot"
        );
        let other = Question {
            dermatologist: Some(8),
            ..question.clone()
        };
        assert!(snapshot.openings(&other).unwrap().is_empty());
        let unknown = Question {
            dermatologist: Some(9),
            ..question.clone()
        };
        assert!(matches!(
            snapshot.openings(&unknown),
            Err(SearchError::UnknownDermatologist)
        ));
        let unknown = Question {
            treatment: "peel",
            ..question
        };
        assert!(matches!(
            snapshot.openings(&unknown),
            Err(SearchError::UnknownTreatment)
        ));
    }

    #[actix_web::test]
    async fn a_change_here_is_checked_at_once_and_otherwise_only_after_the_staleness() {
        let clock = Clock::default();
        let index = AvailabilityIndex::new(std::time::Duration::from_secs(5), clock.clone());
        let checks = AtomicUsize::new(0);
        let reload = |previous: Arc<Snapshot>, _| {
            checks.fetch_add(1, Ordering::SeqCst);
            async move { Ok::<_, ()>(Some(snapshot(previous.generation + 1))) }
        };
        let first = index.current(reload).await.unwrap();
        assert_eq!(first.generation(), 1);
        assert_eq!(index.current(reload).await.unwrap().generation(), 1);
        assert_eq!(checks.load(Ordering::SeqCst), 1, "within the staleness");

        index.changed();
        assert_eq!(index.current(reload).await.unwrap().generation(), 2);
        assert_eq!(
            checks.load(Ordering::SeqCst),
            2,
            "a change here checks at once"
        );

        clock.advance(Duration::seconds(6));
        assert_eq!(index.current(reload).await.unwrap().generation(), 3);
        assert_eq!(checks.load(Ordering::SeqCst), 3, "past the staleness");
    }

    #[actix_web::test]
    async fn a_change_during_a_check_or_an_abandoned_check_leaves_the_next_search_to_check() {
        let index = AvailabilityIndex::new(std::time::Duration::from_secs(60), Clock::default());
        let checks = AtomicUsize::new(0);
        let reload = |previous: Arc<Snapshot>, _| {
            checks.fetch_add(1, Ordering::SeqCst);
            async move { Ok::<_, ()>(Some(snapshot(previous.generation + 1))) }
        };
        index.current(reload).await.unwrap();
        // A change lands while a check is loading: that check began before it.
        index.changed();
        index
            .current(|previous: Arc<Snapshot>, _| {
                index.changed();
                async move { Ok::<_, ()>(Some(snapshot(previous.generation + 1))) }
            })
            .await
            .unwrap();
        index.current(reload).await.unwrap();
        assert_eq!(checks.load(Ordering::SeqCst), 2, "checked again after it");

        // A check abandoned half-way (its request went away) saves nothing.
        index.changed();
        let abandoned =
            index.current(|_, _| std::future::pending::<Result<Option<Snapshot>, ()>>());
        assert!(
            tokio::time::timeout(std::time::Duration::from_millis(20), abandoned)
                .await
                .is_err()
        );
        index.current(reload).await.unwrap();
        assert_eq!(
            checks.load(Ordering::SeqCst),
            3,
            "the next search checks itself"
        );
        index.current(reload).await.unwrap();
        assert_eq!(
            checks.load(Ordering::SeqCst),
            3,
            "and then it is up to date"
        );
    }

    #[actix_web::test]
    async fn searches_queued_behind_a_check_take_its_snapshot_unless_a_change_followed() {
        let index = AvailabilityIndex::new(std::time::Duration::from_secs(60), Clock::default());
        let next = |previous: Arc<Snapshot>| Some(snapshot(previous.generation + 1));
        index
            .current(|previous, _| async move { Ok::<_, ()>(next(previous)) })
            .await
            .unwrap();
        index.changed();
        let (release, released) = tokio::sync::oneshot::channel::<()>();
        let checks = AtomicUsize::new(0);
        let counted = |previous: Arc<Snapshot>, _| {
            checks.fetch_add(1, Ordering::SeqCst);
            async move { Ok::<_, ()>(next(previous)) }
        };
        // One search checks (and waits for the database); another arrives meanwhile;
        // then a change, and a third search.
        let first = index.current(|previous, _| async move {
            released.await.unwrap();
            Ok::<_, ()>(next(previous))
        });
        let during = index.current(counted);
        let after_a_change = async {
            actix_web::rt::task::yield_now().await;
            index.changed();
            let search = index.current(counted);
            release.send(()).unwrap();
            search.await
        };
        let (first, during, after_a_change) =
            futures_util::future::join3(first, during, after_a_change).await;
        assert_eq!(first.unwrap().generation(), 2);
        assert_eq!(during.unwrap().generation(), 2, "the check it waited for");
        assert_eq!(
            after_a_change.unwrap().generation(),
            3,
            "a check of its own"
        );
        assert_eq!(checks.load(Ordering::SeqCst), 1);
    }

    #[actix_web::test]
    async fn a_failed_check_is_retried_by_the_next_search() {
        let index = AvailabilityIndex::new(std::time::Duration::from_secs(5), Clock::default());
        let failed = index
            .current(|_, _| async { Err::<Option<Snapshot>, _>("database down") })
            .await;
        assert!(failed.is_err());
        let next = index
            .current(|_, _| async { Ok::<_, &str>(Some(snapshot(1))) })
            .await
            .unwrap();
        assert_eq!(next.generation(), 1);
    }
}
