//! What the availability index reads besides free slots: the versions the triggers keep
//! (`availability_marks`), and who performs what.

use diesel::prelude::*;

use crate::db::DbConnection;
use crate::db::schema::{availability_marks, dermatologist_treatments, dermatologists};

/// The row of `availability_marks` that stands for the catalogue, not a dermatologist.
pub const CATALOGUE: i64 = 0;

/// Every (dermatologist id, version); id [`CATALOGUE`] is the catalogue's.
pub fn marks(conn: &mut DbConnection) -> QueryResult<Vec<(i64, i64)>> {
    availability_marks::table
        .select((
            availability_marks::dermatologist_id,
            availability_marks::version,
        ))
        .load(conn)
}

/// (treatment id, dermatologist id) for every active dermatologist and what they perform.
pub fn performers(conn: &mut DbConnection) -> QueryResult<Vec<(i64, i64)>> {
    dermatologist_treatments::table
        .inner_join(dermatologists::table)
        .filter(dermatologists::active.eq(true))
        .order((
            dermatologist_treatments::treatment_id,
            dermatologist_treatments::dermatologist_id,
        ))
        .select((
            dermatologist_treatments::treatment_id,
            dermatologist_treatments::dermatologist_id,
        ))
        .load(conn)
}

/// The ids of the active dermatologists.
pub fn active_dermatologists(conn: &mut DbConnection) -> QueryResult<Vec<i64>> {
    dermatologists::table
        .filter(dermatologists::active.eq(true))
        .select(dermatologists::id)
        .load(conn)
}
