//! Objects kept for reuse, and let go once a burst has passed: what sat unused for a
//! whole housekeeping period (its low-water mark) is dropped at the next one, so that
//! memory used to answer a burst goes back to the system instead of staying resident.

pub struct FreeList<T> {
    items: Vec<T>,
    cap: usize,
    /// The fewest items held since the last `trim_unused`: that many were never needed.
    low_water: usize,
}

impl<T> FreeList<T> {
    pub const fn new(cap: usize) -> Self {
        FreeList {
            items: Vec::new(),
            cap,
            low_water: 0,
        }
    }

    pub fn take(&mut self) -> Option<T> {
        let item = self.items.pop();
        self.low_water = self.low_water.min(self.items.len());
        item
    }

    /// Keeps `item` for reuse, or hands it back when the list is full.
    pub fn give(&mut self, item: T) -> Result<(), T> {
        if self.items.len() >= self.cap {
            return Err(item);
        }
        self.items.push(item);
        Ok(())
    }

    /// Drops the items no one took since the last call (the oldest); says whether any went.
    pub fn trim_unused(&mut self) -> bool {
        let unused = self.low_water;
        self.items.drain(..unused);
        if self.items.is_empty() {
            self.items = Vec::new();
        }
        self.low_water = self.items.len();
        unused > 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_what_a_period_used_and_drops_the_rest() {
        let mut list = FreeList::new(8);
        for i in 0..6 {
            assert!(list.give(i).is_ok());
        }
        list.trim_unused();
        // Two taken and given back: four sat unused the whole period.
        let (a, b) = (list.take(), list.take());
        list.give(a.unwrap_or(0)).ok();
        list.give(b.unwrap_or(0)).ok();
        assert!(list.trim_unused());
        assert_eq!(list.items.len(), 2);
        // A quiet period: the last two go too.
        assert!(list.trim_unused());
        assert!(list.items.is_empty());
        assert!(!list.trim_unused());
    }

    #[test]
    fn a_full_list_hands_items_back() {
        let mut list = FreeList::new(1);
        assert!(list.give(1).is_ok());
        assert_eq!(list.give(2), Err(2));
    }
}
