//! A short, fixed-capacity list of actions.
//!
//! Transitions return at most [`MAX_ACTIONS`] actions, and some run for
//! every forwarded packet, so the list lives inline: no allocation per
//! transition.

use std::fmt;

/// The most actions one transition yields.
pub const MAX_ACTIONS: usize = 4;

/// The actions of one transition, in the order they must be carried out.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Actions<A: Copy> {
    items: [Option<A>; MAX_ACTIONS],
}

impl<A: Copy> Actions<A> {
    /// No action.
    pub fn none() -> Actions<A> {
        Actions {
            items: [None; MAX_ACTIONS],
        }
    }

    /// The given actions. Transition tables are fixed and every one of them
    /// is tested, so an overlong list is a bug caught by the tests.
    pub(super) fn of(list: &[A]) -> Actions<A> {
        assert!(list.len() <= MAX_ACTIONS, "too many actions");
        let mut items = [None; MAX_ACTIONS];
        for (slot, &action) in items.iter_mut().zip(list) {
            *slot = Some(action);
        }
        Actions { items }
    }

    pub fn iter(&self) -> impl Iterator<Item = A> + '_ {
        self.items.iter().map_while(|a| *a)
    }

    pub fn len(&self) -> usize {
        self.iter().count()
    }

    pub fn is_empty(&self) -> bool {
        self.items[0].is_none()
    }

    pub fn contains(&self, action: A) -> bool
    where
        A: PartialEq,
    {
        self.iter().any(|a| a == action)
    }

    pub fn to_vec(&self) -> Vec<A> {
        self.iter().collect()
    }
}

impl<A: Copy> IntoIterator for Actions<A> {
    type Item = A;
    type IntoIter = std::iter::MapWhile<
        std::array::IntoIter<Option<A>, MAX_ACTIONS>,
        fn(Option<A>) -> Option<A>,
    >;

    fn into_iter(self) -> Self::IntoIter {
        self.items
            .into_iter()
            .map_while(std::convert::identity as fn(Option<A>) -> Option<A>)
    }
}

impl<A: Copy + fmt::Debug> fmt::Debug for Actions<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_order() {
        let actions = Actions::of(&[3, 1, 2]);
        assert_eq!(actions.to_vec(), [3, 1, 2]);
        assert_eq!(actions.into_iter().collect::<Vec<_>>(), [3, 1, 2]);
        assert_eq!(actions.len(), 3);
        assert!(actions.contains(1) && !actions.contains(4));
        assert!(Actions::<u8>::none().is_empty());
        assert_eq!(format!("{actions:?}"), "[3, 1, 2]");
    }
}
