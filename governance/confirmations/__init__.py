"""Partners' answers: the partner organisation confirms or disputes each support line and each
interaction recorded about it; disputes go to the compliance queue."""
